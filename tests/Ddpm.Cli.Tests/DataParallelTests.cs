using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Ddpm.Distributed;
using Ddpm.Training;

namespace Ddpm.Cli.Tests;

/// <summary>
/// `mpirun -np 2 ddpm train` on one machine (Open MPI over shared memory / loopback): two ranks with batch 4 each train like
/// one process with batch 8, both ranks end with identical weights, a 2-rank checkpoint resumes in one process, killing
/// a rank ends the run, and so does stopping one (the collective watchdog). The seed model (specs/fashion-mnist.yaml) on the synthetic data set, 20 steps; each rank uses one
/// torch thread so the two fit the machine's cores. Skipped, with the reason, where Open MPI's mpirun is not installed
/// (.ci/run installs it on Debian).
/// </summary>
[Collection("cli")]
public sealed class DataParallelTests(DataParallelTests.Runs runs) : IClassFixture<DataParallelTests.Runs>
{
    /// <summary>
    /// How far the 2-rank weights may be from one process's after 20 steps. Only the order of float32 additions differs
    /// (the batch-8 reductions against two batch-4 ones summed by MPI), so each step's gradient differs by a few float32 ulps
    /// (relative ~1e-7 to 1e-6); Adam divides by sqrt(v), so an element's step differs relatively as much, and a step is at
    /// most about lr = 1e-3. Measured here: max |dw| = 2.4e-6 at step 20 (3.2e-6 at step 30). A real error is far larger:
    /// rank 1 drawing rank 0's noise instead of its own gives 2.4e-2. The bound sits between, ~80x above the rounding drift.
    /// </summary>
    private const double WeightTolerance = 2e-4;

    /// <summary>The runs the tests compare, made once: 2 ranks x batch 4 and one process x batch 8, 20 steps each.</summary>
    public sealed class Runs : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("ddpm-mpi-").FullName;
        public string Distributed => Path.Combine(Root, "two-ranks");
        public string Single => Path.Combine(Root, "one-process");
        private readonly Lazy<(int Code, string Out, string Err)> distributed, single;

        /// <summary>A 32-image Fashion-MNIST cache with labels (DDPM_DATA) for the class-conditional spec.</summary>
        public string Data => Path.Combine(Root, "data");

        public Runs()
        {
            var pixels = new byte[32 * 28 * 28];
            new Random(7).NextBytes(pixels);
            var images = new Ddpm.Data.ImageSet(pixels, 32, 1, 28, 28);
            var labels = Enumerable.Range(0, 32).Select(i => (byte)(i % 10)).ToArray();
            Ddpm.Data.FashionMnist.WriteCache(Ddpm.Data.FashionMnist.CacheFolder(Data), new Ddpm.Data.FashionMnistSplit(images, labels, images, labels));
            distributed = new(() => Launch.Mpi(2, Train(Distributed, 20)));
            single = new(() => Launch.Ddpm(Train(Single, 20)));
        }

        public (int Code, string Out, string Err) TwoRanks => distributed.Value;
        public (int Code, string Out, string Err) OneProcess => single.Value;

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    private static string[] Train(string folder, int steps, params string[] more) =>
        ["train", Spec(), "--dataset", "synthetic", "--out", folder, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--batch-size", "8",
         "--sample-every", "0", "--final-samples", "0", "--eval-every", "0", .. more];

    private static string[] TrainConditional(string folder) =>
        ["train", Spec("fashion-mnist-conditional.yaml"), "--dataset", "fashion-mnist", "--out", folder, "--steps", "10", "--batch-size", "8",
         "--sample-every", "0", "--final-samples", "0", "--eval-every", "0"];

    private static string Spec(string name = "fashion-mnist.yaml", [System.Runtime.CompilerServices.CallerFilePath] string testFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(testFile)!, "..", "..", "specs", name));

    private static string LastCheckpoint(string run) => Path.Combine(run, "checkpoints", "last.ckpt");

    [SkippableFact]
    public void Two_ranks_with_batch_4_end_identical_and_equal_to_one_process_with_batch_8()
    {
        Launch.SkipWithoutMpi();
        var (code, output, error) = runs.TwoRanks;
        Assert.True(code == 0, $"mpirun exited {code}: {error}\n{output}");
        var (singleCode, _, singleError) = runs.OneProcess;
        Assert.True(singleCode == 0, singleError);

        // Every rank reports the checksum of its final weights and EMA; they are equal, and they are the checkpoint's.
        var checksums = Enumerable.Range(0, 2).Select(rank => ChecksumLine(output, rank)).ToArray();
        Assert.Equal(checksums[0], checksums[1]);
        using var twoRanks = Checkpoint.Load(LastCheckpoint(runs.Distributed));
        using var oneProcess = Checkpoint.Load(LastCheckpoint(runs.Single));
        Assert.Equal(20, twoRanks.Step);
        Assert.Equal(checksums[0], DataParallel.Checksum(twoRanks.Model.Concat(twoRanks.Ema!).Select(v => v.Value)).ToString("x16", CultureInfo.InvariantCulture));

        // The same global batches and noise: the weights agree to float32 rounding, step 1's loss almost bit for bit.
        double drift = MaxDifference(twoRanks, oneProcess);
        Assert.True(drift < WeightTolerance, $"the 2-rank weights differ from one process's by up to {drift:G3}");
        var (first, firstSingle) = (FirstLoss(runs.Distributed), FirstLoss(runs.Single));
        Assert.True(Math.Abs(first - firstSingle) <= 1e-6 * firstSingle, $"step 1 loss {first} vs {firstSingle}");
        Assert.Contains("over 2 ranks", File.ReadAllText(Path.Combine(runs.Distributed, "log.txt")));
    }

    [SkippableFact]
    public void A_two_rank_checkpoint_resumes_in_one_process_on_the_same_data_order()
    {
        Launch.SkipWithoutMpi();
        Assert.True(runs.TwoRanks.Code == 0, runs.TwoRanks.Err);
        string resumed = Path.Combine(runs.Root, "resumed");
        CopyFolder(runs.Distributed, resumed);
        var (code, output, error) = Launch.Ddpm(Train(resumed, 30, "--resume"));
        Assert.True(code == 0, error);
        Assert.Contains($"resumed from {LastCheckpoint(resumed)} at step 20", output);

        // Uninterrupted, one process: steps 21..30 read the same batches, so the weights agree as closely as at step 20.
        string straight = Path.Combine(runs.Root, "straight");
        var (straightCode, _, straightError) = Launch.Ddpm(Train(straight, 30));
        Assert.True(straightCode == 0, straightError);
        using var a = Checkpoint.Load(LastCheckpoint(resumed));
        using var b = Checkpoint.Load(LastCheckpoint(straight));
        Assert.Equal(30, a.Step);
        double drift = MaxDifference(a, b);
        Assert.True(drift < WeightTolerance, $"resumed in one process, the weights differ from an uninterrupted run's by up to {drift:G3}");
    }

    [SkippableFact]
    public void Killing_one_rank_ends_the_run_and_leaves_a_checkpoint_that_resumes()
    {
        Launch.SkipWithoutMpi();
        string run = Path.Combine(runs.Root, "killed");
        string tag = Guid.NewGuid().ToString("N");
        var messages = new StringBuilder();
        using var mpirun = Launch.StartMpi(2, tag, Train(run, 1000, "--checkpoint-every", "2"), messages);
        var watch = Stopwatch.StartNew();
        try
        {
            while (!File.Exists(LastCheckpoint(run)))
            {
                Assert.False(mpirun.HasExited, $"mpirun exited ({(mpirun.HasExited ? mpirun.ExitCode : 0)}) before the first checkpoint");
                Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), "no checkpoint within 2 minutes");
                Thread.Sleep(100);
            }
            int rank1 = Launch.RankPid(tag, 1) ?? throw new Xunit.Sdk.XunitException("rank 1's process was not found");
            Process.GetProcessById(rank1).Kill(); // SIGKILL, as the OOM killer would
            watch.Restart();
            Assert.True(mpirun.WaitForExit(TimeSpan.FromSeconds(60)), "the other rank and mpirun were still running 60 s after rank 1 was killed");
        }
        finally
        {
            if (!mpirun.HasExited) mpirun.Kill(entireProcessTree: true);
        }
        Assert.NotEqual(0, mpirun.ExitCode);
        mpirun.WaitForExit(); // the output is complete
        lock (messages) Assert.Contains("process rank 1 with PID", messages.ToString()); // mpirun's own message names the dead rank
        Assert.Null(Launch.RankPid(tag, 0)); // rank 0 did not outlive the job
        using (var last = Checkpoint.Load(LastCheckpoint(run)))
        {
            long step = last.Step;
            Assert.True(step >= 2);
            var (code, output, error) = Launch.Ddpm(Train(run, (int)step + 2, "--resume", "--checkpoint-every", "2"));
            Assert.True(code == 0, error);
            Assert.Contains($"at step {step}", output);
        }
    }

    [SkippableFact]
    public void A_rank_stopped_with_SIGSTOP_is_named_by_the_watchdog_which_ends_the_job_with_the_last_checkpoint_loadable()
    {
        Launch.SkipWithoutMpi();
        string run = Path.Combine(runs.Root, "stopped");
        string tag = Guid.NewGuid().ToString("N");
        StringBuilder messages = new(), errors = new();
        using var mpirun = Launch.StartMpi(2, tag, Train(run, 1000, "--checkpoint-every", "2", "--watchdog-seconds", "5"), messages, errors: errors);
        var watch = Stopwatch.StartNew();
        try
        {
            while (!File.Exists(LastCheckpoint(run)))
            {
                Assert.False(mpirun.HasExited, $"mpirun exited ({(mpirun.HasExited ? mpirun.ExitCode : 0)}) before the first checkpoint");
                Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), "no checkpoint within 2 minutes");
                Thread.Sleep(100);
            }
            int rank1 = Launch.RankPid(tag, 1) ?? throw new Xunit.Sdk.XunitException("rank 1's process was not found");
            Assert.Equal(0, Signal.Send(rank1, Signal.Stop)); // alive but silent, as a frozen machine
            watch.Restart();
            // 5 s of silence, then MPI_Abort; mpirun ends the stopped rank too.
            Assert.True(mpirun.WaitForExit(TimeSpan.FromSeconds(40)), "the job was still running 40 s after rank 1 was stopped");
        }
        finally
        {
            if (!mpirun.HasExited) mpirun.Kill(entireProcessTree: true);
            foreach (int rank in new[] { 0, 1 })
                if (Launch.RankPid(tag, rank) is int pid) // nothing may be left stopped or running
                {
                    Signal.Send(pid, Signal.Continue);
                    Signal.Send(pid, Signal.Kill);
                }
        }
        mpirun.WaitForExit(); // the output is complete
        Assert.Equal(1, mpirun.ExitCode); // the watchdog's MPI_Abort code
        Assert.Null(Launch.RankPid(tag, 0));
        Assert.Null(Launch.RankPid(tag, 1));

        string[] lines;
        lock (errors) lines = errors.ToString().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith("ddpm:", StringComparison.Ordinal)).ToArray();
        string line = Assert.Single(lines);
        var match = System.Text.RegularExpressions.Regex.Match(line,
            @"^ddpm: rank 1 did not (reach|complete) step (\d+)'s (gradient all-reduce|loss average|replica check) within 5 s; ending all ranks\. " +
            @"The last checkpoint (.+) \(step (\d+)\) is loadable; resume with the same command and --resume\.$");
        Assert.True(match.Success, line);
        long waitedIn = long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), claimed = long.Parse(match.Groups[5].Value, CultureInfo.InvariantCulture);
        Assert.Equal(LastCheckpoint(run), match.Groups[4].Value);
        Assert.Equal((waitedIn - 1) / 2 * 2, claimed); // the last even step before the collective: every checkpoint is named
        Assert.False(File.Exists(LastCheckpoint(run) + ".tmp")); // the job never ends inside rank 0's checkpoint write
        using var last = Checkpoint.Load(LastCheckpoint(run));
        Assert.Equal(claimed, last.Step);
    }

    [SkippableFact]
    public void A_class_conditional_model_trains_on_two_ranks_as_in_one_process()
    {
        Launch.SkipWithoutMpi();
        // Labels and their dropout draws are the whole batch's, as one process makes them, then each rank keeps its rows.
        string two = Path.Combine(runs.Root, "conditional-two"), one = Path.Combine(runs.Root, "conditional-one");
        var (code, output, error) = Launch.Mpi(2, TrainConditional(two), runs.Data);
        Assert.True(code == 0, $"mpirun exited {code}: {error}\n{output}");
        var (singleCode, _, singleError) = Launch.Ddpm(TrainConditional(one), runs.Data);
        Assert.True(singleCode == 0, singleError);
        using var a = Checkpoint.Load(LastCheckpoint(two));
        using var b = Checkpoint.Load(LastCheckpoint(one));
        double drift = MaxDifference(a, b);
        Assert.True(drift < WeightTolerance, $"the conditional model's 2-rank weights differ from one process's by up to {drift:G3}");
        Assert.Equal(ChecksumLine(output, 0, 10), ChecksumLine(output, 1, 10));
    }

    [SkippableFact]
    public void A_batch_that_does_not_split_over_the_ranks_is_refused_before_anything_is_written()
    {
        Launch.SkipWithoutMpi();
        string run = Path.Combine(runs.Root, "odd-batch");
        var args = Train(run, 5);
        args[Array.IndexOf(args, "--batch-size") + 1] = "7";
        var (code, output, error) = Launch.Mpi(2, args);
        Assert.True(code != 0, output);
        Assert.Contains("ddpm: batch size 7 does not split evenly over 2 ranks; use a multiple of 2 (--batch-size).", error);
        Assert.False(Directory.Exists(run));
    }

    private static string ChecksumLine(string output, int rank, int step = 20)
    {
        string prefix = $"rank {rank} of 2: step {step}, weights checksum ";
        string? line = output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains(prefix, StringComparison.Ordinal));
        Assert.True(line is not null, $"no line '{prefix}...' in:\n{output}");
        int at = line!.IndexOf(prefix, StringComparison.Ordinal) + prefix.Length;
        return line.Substring(at, 16);
    }

    private static double MaxDifference(Checkpoint a, Checkpoint b)
    {
        double max = 0;
        foreach (var ((name, x), (_, y)) in a.Model.Zip(b.Model).Concat(a.Ema!.Zip(b.Ema!)))
        {
            Assert.Equal(x.shape, y.shape);
            max = Math.Max(max, (x - y).abs().max().item<float>());
        }
        return max;
    }

    private static double FirstLoss(string run) =>
        double.Parse(File.ReadLines(Path.Combine(run, "loss.csv")).Skip(1).First().Split(',')[1], CultureInfo.InvariantCulture);

    private static void CopyFolder(string from, string to)
    {
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    /// <summary>Starts the built ddpm, alone or under mpirun.</summary>
    private static class Launch
    {
        private static readonly Lazy<string?> MpiRun = new(() =>
            (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Select(dir => Path.Combine(dir, "mpirun")).FirstOrDefault(File.Exists));

        public static void SkipWithoutMpi() =>
            Skip.If(MpiRun.Value is null, "mpirun is not installed (Open MPI: apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it on Debian)");

        private static string Dll => Path.Combine(AppContext.BaseDirectory, "ddpm.dll");

        public static (int Code, string Out, string Err) Ddpm(string[] args, string? dataRoot = null)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Dll);
            foreach (string arg in args) start.ArgumentList.Add(arg);
            start.Environment["OMP_NUM_THREADS"] = "1";
            if (dataRoot is not null) start.Environment[global::Ddpm.Data.FashionMnist.DataEnvironmentVariable] = dataRoot;
            return Wait(Process.Start(start)!);
        }

        public static (int Code, string Out, string Err) Mpi(int ranks, string[] args, string? dataRoot = null) =>
            Wait(StartMpi(ranks, null, args, null, dataRoot));

        /// <summary>
        /// mpirun -np <paramref name="ranks"/> dotnet ddpm.dll ...; <paramref name="tag"/> marks the ranks' environment;
        /// <paramref name="messages"/> collects stdout and stderr, <paramref name="errors"/> stderr alone.
        /// </summary>
        public static Process StartMpi(int ranks, string? tag, string[] args, StringBuilder? messages, string? dataRoot = null, StringBuilder? errors = null)
        {
            var start = new ProcessStartInfo(MpiRun.Value!) { RedirectStandardOutput = true, RedirectStandardError = true };
            // As root (CI) mpirun refuses to start without --allow-run-as-root; 2 ranks may exceed the machine's free slots.
            foreach (string arg in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(CultureInfo.InvariantCulture),
                                           "-x", "OMP_NUM_THREADS=1", "-x", $"DDPM_TEST_TAG={tag ?? "none"}", "dotnet", Dll })
                start.ArgumentList.Add(arg);
            foreach (string arg in args) start.ArgumentList.Add(arg);
            // mpirun passes its own environment on to the ranks it starts on this machine.
            if (dataRoot is not null) start.Environment[global::Ddpm.Data.FashionMnist.DataEnvironmentVariable] = dataRoot;
            var process = Process.Start(start)!;
            if (messages is not null)
            {
                void Add(string? line) { lock (messages) messages.AppendLine(line); }
                process.OutputDataReceived += (_, e) => Add(e.Data);
                process.ErrorDataReceived += (_, e) =>
                {
                    Add(e.Data);
                    if (errors is not null) lock (errors) errors.AppendLine(e.Data);
                };
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
            }
            return process;
        }

        private static (int Code, string Out, string Err) Wait(Process process)
        {
            using (process)
            {
                var output = process.StandardOutput.ReadToEndAsync();
                string error = process.StandardError.ReadToEnd();
                if (!process.WaitForExit(TimeSpan.FromMinutes(4)))
                {
                    process.Kill(entireProcessTree: true);
                    Assert.Fail("ddpm did not finish in 4 minutes");
                }
                return (process.ExitCode, output.Result, error);
            }
        }

        /// <summary>The process of rank <paramref name="rank"/> of the job tagged <paramref name="tag"/>, if it is running.</summary>
        public static int? RankPid(string tag, int rank)
        {
            foreach (string dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
                string environment;
                try { environment = File.ReadAllText(Path.Combine(dir, "environ")); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                var variables = environment.Split('\0');
                if (variables.Contains($"DDPM_TEST_TAG={tag}") && variables.Contains($"OMPI_COMM_WORLD_RANK={rank}")
                    && !File.ReadAllText(Path.Combine(dir, "stat")).Contains(") Z ", StringComparison.Ordinal))
                    return pid;
            }
            return null;
        }
    }

    /// <summary>kill(2): stopping and continuing a rank (.NET sends only SIGKILL and SIGTERM).</summary>
    private static class Signal
    {
        public const int Kill = 9, Continue = 18, Stop = 19; // Linux x86-64 and arm64

        public static int Send(int pid, int signal) => kill(pid, signal);

        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int sig);
    }
}
