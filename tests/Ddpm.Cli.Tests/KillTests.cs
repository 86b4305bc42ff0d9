using System.Diagnostics;
using Ddpm.Data;
using Ddpm.Training;

namespace Ddpm.Cli.Tests;

/// <summary>
/// `ddpm train` killed (SIGKILL) at any moment: during steps and checkpoint writes (a checkpoint every step, killed at
/// several delays), and during the final sample grid. The last checkpoint always loads and `--resume` continues from it
/// (or draws the final grid a kill lost).
/// The built ddpm runs as a child process on the seed model with a 32-image Fashion-MNIST fixture (DDPM_DATA).
/// </summary>
[Collection("cli")]
public sealed class KillTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-kill-").FullName;
    private readonly string dataRoot;

    public KillTests()
    {
        dataRoot = Path.Combine(root, "data");
        ChildRunFixture.WriteFashionMnist(dataRoot);
    }

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static string Spec() => ChildRunFixture.SeedSpec();

    /// <summary>The built ddpm as a child process reading the fixture.</summary>
    private ProcessStartInfo Child(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ddpm.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment[FashionMnist.DataEnvironmentVariable] = dataRoot;
        return start;
    }

    private Process Start(params string[] args)
    {
        var process = Process.Start(Child(args))!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private (int Code, string Out, string Err) Run(params string[] args)
    {
        using var process = Process.Start(Child(args))!;
        var output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "ddpm did not finish in 3 minutes");
        return (process.ExitCode, output.Result, error);
    }

    /// <summary>SIGKILL, as a crash or the OOM killer would, and wait for it.</summary>
    private static void Stop(Process process)
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    private static long? StepOf(string checkpoint)
    {
        if (!File.Exists(checkpoint)) return null;
        try
        {
            using var loaded = Checkpoint.Load(checkpoint);
            return loaded.Step;
        }
        catch (IOException) { return null; } // replaced between the check and the read
    }

    private static void WaitFor(Func<bool> condition, Process process, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (process.HasExited) Assert.Fail($"ddpm exited ({process.ExitCode}) before {what}");
            Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), $"no {what} within 2 minutes");
            Thread.Sleep(50);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(300)]
    public void A_run_killed_during_steps_and_checkpoint_writes_keeps_a_checkpoint_that_resumes(int delayMs)
    {
        string run = Path.Combine(root, $"run-{delayMs}"), last = Path.Combine(run, "checkpoints", "last.ckpt");
        using (var process = Start("train", Spec(), "--out", run, "--steps", "1000", "--batch-size", "2", "--checkpoint-every", "1",
                                   "--sample-every", "0", "--final-samples", "0", "--eval-every", "0"))
            try
            {
                WaitFor(() => File.Exists(last), process, "a first checkpoint");
                Thread.Sleep(delayMs);
            }
            finally
            {
                Stop(process); // also when the wait failed: a 1000-step run must not outlive the test
            }
        long step = StepOf(last) ?? throw new Xunit.Sdk.XunitException($"{last} does not load after the kill");
        Assert.True(step >= 1);

        var (code, output, error) = Run("train", Spec(), "--out", run, "--steps", (step + 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
                                        "--batch-size", "2", "--sample-every", "0", "--final-samples", "0", "--eval-every", "0", "--resume");
        Assert.True(code == 0, error);
        Assert.Contains($"resumed from {last} at step {step}", output);
        Assert.Equal(step + 2, StepOf(last));
        // A write cut short leaves last.ckpt.tmp; the next save writes and renames it, so none is left over.
        Assert.Empty(Directory.GetFiles(Path.Combine(run, "checkpoints"), "*.tmp"));
    }

    [Fact]
    public void A_run_killed_while_drawing_its_final_grid_keeps_its_final_checkpoint_and_a_resume_draws_the_grid()
    {
        string run = Path.Combine(root, "final"), last = Path.Combine(run, "checkpoints", "last.ckpt"), log = Path.Combine(run, "log.txt");
        string grid = Path.Combine(run, "samples", "step-000003.png");
        using var process = Start("train", Spec(), "--out", run, "--steps", "3", "--batch-size", "2", "--sample-every", "0",
                                  "--final-samples", "16", "--eval-every", "0");
        try
        {
            // The grid is announced after the final checkpoint is written, and before the minutes it may take.
            WaitFor(() => File.Exists(log) && File.ReadAllText(log).Contains($"step 3: drawing the final sample grid, 16 images (", StringComparison.Ordinal),
                    process, "the final grid's log line");
            Assert.False(process.HasExited, "the final grid (16 images) was drawn before the kill could land");
        }
        finally
        {
            Stop(process);
        }
        Assert.False(File.Exists(grid));
        Assert.Equal(3, StepOf(last));
        Assert.Contains($"), into {grid}", File.ReadAllLines(log)[^1]);
        var (code, output, error) = Run("train", Spec(), "--out", run, "--steps", "3", "--batch-size", "2", "--eval-every", "0", "--resume");
        Assert.True(code == 0, error);
        Assert.Contains($"the run is at step 3 of 3, but its final sample grid {grid} is missing: drawing it.", output);
        Assert.Contains($"step 3: drawing the final sample grid, 16 images (", output); // the count the run recorded
        Assert.Contains($"step 3: wrote {grid} (", output);
        Assert.True(File.Exists(grid));
        Assert.DoesNotContain("nothing to do", output);
    }
}
