using System.Diagnostics;
using System.Globalization;
using Ddpm.Data;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26, item 2: one `ddpm train` at a time in a run folder. Real processes (the built ddpm) on the seed model with a
/// 32-image Fashion-MNIST fixture (DDPM_DATA): of two started into one folder exactly one trains and the other exits 2
/// with one line naming the holder's process id and writes nothing; a killed holder leaves no lock behind.
/// </summary>
[Collection("cli")]
public sealed class RunLockTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-lock-").FullName;
    private readonly string dataRoot;

    public RunLockTests()
    {
        dataRoot = Path.Combine(root, "data");
        ChildRunFixture.WriteFashionMnist(dataRoot);
    }

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static string Spec() => ChildRunFixture.SeedSpec();

    private Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ddpm.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment[FashionMnist.DataEnvironmentVariable] = dataRoot;
        return Process.Start(start)!;
    }

    private static (int Code, string Out, string Err) Finish(Process process)
    {
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "ddpm did not finish in 3 minutes");
        return (process.ExitCode, output.Result, error.Result);
    }

    private string[] Train(string run, int steps, params string[] more) =>
        ["train", Spec(), "--out", run, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--batch-size", "2", "--sample-every", "0",
         "--final-samples", "0", "--eval-every", "0", "--checkpoint-every", "1", .. more];

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public void Two_runs_started_at_once_into_one_folder_train_once()
    {
        string run = Path.Combine(root, "race");
        using var first = Start(Train(run, 4));
        using var second = Start(Train(run, 4, "--seed", "9"));
        var results = new[] { Finish(first), Finish(second) };

        Assert.Single(results, r => r.Code == 0);
        var refused = Assert.Single(results, r => r.Code != 0);
        Assert.True(refused.Code == 2, refused.Err);
        string line = Assert.Single(Lines(refused.Err));
        // Refused by the lock while the other trains, or by the run the other has finished: one line either way.
        Assert.True(line.StartsWith($"ddpm: {run} is in use by another ddpm train (process ", StringComparison.Ordinal) ||
                    line.StartsWith($"ddpm: {run} already holds a run", StringComparison.Ordinal), line);
        // One run's files only: one header in the log, each step once in the loss curve.
        Assert.Single(File.ReadAllLines(Path.Combine(run, "log.txt")), l => l.Contains(" ddpm train ", StringComparison.Ordinal));
        Assert.Equal(["step,loss,lr,grad_norm", "1", "2", "3", "4"],
                     File.ReadAllLines(Path.Combine(run, "loss.csv")).Select((l, i) => i == 0 ? l : l.Split(',')[0]));
    }

    [Fact]
    public void A_second_run_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock()
    {
        string run = Path.Combine(root, "held"), last = Path.Combine(run, "checkpoints", "last.ckpt");
        using (var holder = Start(Train(run, 2000)))
        {
            holder.OutputDataReceived += (_, _) => { };
            holder.ErrorDataReceived += (_, _) => { };
            holder.BeginOutputReadLine();
            holder.BeginErrorReadLine();
            try
            {
                var watch = Stopwatch.StartNew();
                while (!File.Exists(last))
                {
                    Assert.False(holder.HasExited, $"the holder exited ({(holder.HasExited ? holder.ExitCode : 0)}) before its first checkpoint");
                    Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), "no first checkpoint within 2 minutes");
                    Thread.Sleep(50);
                }
                string config = File.ReadAllText(Path.Combine(run, "config.yaml"));
                foreach (string[] args in new[] { Train(run, 5, "--overwrite"), Train(run, 2000, "--resume"), Train(run, 5) })
                {
                    using var contender = Start(args);
                    var (code, output, error) = Finish(contender);
                    Assert.True(code == 2, $"exit code {code}: {error}");
                    string line = Assert.Single(Lines(error));
                    if (args.Contains("--overwrite") || args.Contains("--resume"))
                        Assert.Equal($"ddpm: {RunFolderLock.Refusal(run, holder.Id)}", line);
                    else // a plain new run is refused by the run it finds, before it would take the lock
                        Assert.StartsWith($"ddpm: {run} already holds a run", line);
                    Assert.False(holder.HasExited, "the holder ended while the contender ran");
                    Assert.Equal(config, File.ReadAllText(Path.Combine(run, "config.yaml")));
                    Assert.Single(File.ReadAllLines(Path.Combine(run, "log.txt")), l => l.Contains(" ddpm train ", StringComparison.Ordinal));
                }
            }
            finally
            {
                if (!holder.HasExited) holder.Kill(entireProcessTree: true); // SIGKILL: no chance to release anything itself
                holder.WaitForExit();
            }
        }
        Assert.True(File.Exists(Path.Combine(run, RunFolderLock.FileName)), "the lock file stays; its lock died with the process");
        using var again = Start(Train(run, 3, "--resume"));
        var (resumed, _, resumeError) = Finish(again);
        Assert.True(resumed == 0, resumeError);
    }
}
