using System.Diagnostics;
using System.Globalization;
using Ddpm.Distributed;
using Ddpm.Models;
using Ddpm.Training;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>
/// `mpirun -np N ddpm train ...`: what the command line adds to the trainer's data parallelism. Rank 0 owns the run folder
/// (it alone checks it, reads the checkpoint to resume, writes checkpoints, samples, metrics and the log) and sends the
/// checkpoint's bytes to the other ranks, which may run on machines without the folder. An error on any rank ends every
/// rank (MPI_Abort), so none waits for a collective that will never come.
/// </summary>
internal static class DataParallelRun
{
    /// <summary>Largest piece of a checkpoint sent in one broadcast (MPI counts are 32-bit).</summary>
    private const int Piece = 1 << 30;

    /// <summary>The collective watchdog's limit when neither --watchdog-seconds nor <see cref="WatchdogVariable"/> sets one.</summary>
    public const int DefaultWatchdogSeconds = 180;
    /// <summary>Sets the watchdog's limit in seconds for every command run under mpirun (0: off); --watchdog-seconds wins.</summary>
    public const string WatchdogVariable = "DDPM_WATCHDOG_SECONDS";

    /// <summary>
    /// Runs <paramref name="train"/> in the group the launcher made (one process when there is none). In a group of several
    /// ranks an exception is reported by its rank and ends the whole job with the exit code ddpm would return for it, and
    /// a collective that waits <paramref name="watchdogSeconds"/> on a rank that shows no sign of life ends it with one line
    /// naming that rank (<see cref="CollectiveWatchdog"/>).
    /// </summary>
    public static int Run(TextWriter error, Func<IProcessGroup, int> train, int? watchdogSeconds = null)
    {
        int seconds = watchdogSeconds ?? WatchdogFromEnvironment();
        IProcessGroup? joined = null;
        var group = MpiProcessGroup.FromEnvironment(TimeSpan.FromSeconds(seconds), message =>
        {
            error.WriteLine(Line(joined, message)); // then MpiProcessGroup ends the job
            error.Flush();
        });
        joined = group;
        if (group is MpiProcessGroup { WatchdogOff: string off } && group.Rank == 0)
            error.WriteLine($"ddpm: note: {off}");
        if (group.Size == 1)
        {
            try { return train(group); }
            finally { group.Dispose(); }
        }
        int code;
        try
        {
            code = train(group);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            code = e is UsageException ? DdpmCli.BadUsage : DdpmCli.Failure;
            error.WriteLine(Line(group, DdpmCli.Describe(e)));
            error.Flush();
            group.Abort(code); // ends every rank; does not return
        }
        group.Dispose(); // MPI_Finalize, after the last collective of every rank
        return code;
    }

    /// <summary>Rank 0 reports as one process would; the others say which rank they are.</summary>
    private static string Line(IProcessGroup? group, string message) =>
        group is null || group.Rank == 0 ? $"ddpm: {message}" : $"ddpm: rank {group.Rank} of {group.Size}: {message}";

    private static int WatchdogFromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(WatchdogVariable);
        if (string.IsNullOrWhiteSpace(text)) return DefaultWatchdogSeconds;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds))
            throw new UsageException($"{WatchdogVariable}={text} is not a whole number of seconds (0: no watchdog).");
        return seconds;
    }

    /// <summary>The watchdog's closing words on rank 0 after the checkpoint of <paramref name="step"/> was written to <paramref name="path"/>.</summary>
    public static string CheckpointNote(string path, long step) =>
        string.Create(CultureInfo.InvariantCulture, $"The last checkpoint {path} (step {step}) is loadable; resume with the same command and --resume.");

    /// <summary>
    /// Rank 0's checkpoint to resume (null: a new run), on every rank. Rank 0 passes the file it checked; the others receive
    /// its bytes and read them through a temporary file, so every rank starts from exactly the same state.
    /// </summary>
    public static Checkpoint? ShareCheckpoint(IProcessGroup group, Checkpoint? primary, string path)
    {
        if (group.Size == 1) return primary;
        group.Describe("the broadcast of the checkpoint to resume");
        byte[] bytes = group.Rank == 0 && primary is not null ? File.ReadAllBytes(path) : [];
        var length = BitConverter.GetBytes((long)bytes.Length);
        group.Broadcast(length);
        if (group.Rank != 0) bytes = new byte[BitConverter.ToInt64(length)];
        for (long offset = 0; offset < bytes.Length; offset += Piece)
            group.Broadcast(bytes.AsSpan((int)offset, (int)Math.Min(Piece, bytes.Length - offset)));
        if (group.Rank == 0 || bytes.Length == 0) return primary;

        string temporary = Path.Combine(Path.GetTempPath(), $"ddpm-rank{group.Rank}-{Environment.ProcessId}.ckpt");
        try
        {
            File.WriteAllBytes(temporary, bytes);
            return Checkpoint.Load(temporary);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>
    /// `mpirun -np N ddpm bench --allreduce`: the time of one step's gradient averaging (<see cref="DataParallel.AverageGradients"/>:
    /// copies into the buckets, the allreduce, the copies back) for the model's parameters, after a barrier so that waiting
    /// for a slower rank is not counted. Rank 0 prints the median and the fastest of <paramref name="repeats"/>.
    /// </summary>
    public static int BenchAllReduce(IProcessGroup group, ModelEntry entry, int repeats, TextWriter output)
    {
        if (group.Size < 2)
            throw new UsageException("--allreduce measures communication between ranks: start it with mpirun -np 2 (or more) ddpm bench --allreduce.");
        manual_seed(1);
        using var model = entry.CreateModel();
        var parameters = model.parameters().ToArray();
        using (no_grad())
            foreach (var p in parameters) p.grad = randn_like(p).DetachFromDisposeScope();
        using var parallel = new DataParallel(group);
        var raw = new float[parameters.Sum(p => p.numel())];
        List<double> times = [], rawTimes = [];
        var watch = new Stopwatch();
        for (int i = 0; i < repeats + 2; i++)
        {
            group.Barrier();
            watch.Restart();
            parallel.AverageGradients(parameters);
            double averaging = watch.Elapsed.TotalMilliseconds;
            group.Barrier();
            watch.Restart();
            group.AllReduceSum(raw); // MPI alone: one call on one buffer of the same size, no copies
            if (i < 2) continue; // two warm-up rounds: buffers, connections
            times.Add(averaging);
            rawTimes.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        rawTimes.Sort();
        double bytes = raw.Length * 4.0, median = times[times.Count / 2], rawMedian = rawTimes[rawTimes.Count / 2];
        // Bus bandwidth as NCCL's tests define it: a ring allreduce moves 2 (N-1)/N of the buffer through each rank's link.
        double busGBps = 2.0 * (group.Size - 1) / group.Size * bytes / (median / 1000) / 1e9;
        if (group.Rank == 0)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{entry.Name}: {parameters.Sum(p => p.numel()):N0} parameters, {bytes / (1 << 20):F1} MiB of gradients in {parallel.BucketCount} buckets, " +
                $"{group.Size} ranks: gradient averaging {median:F1} ms median, {times[0]:F1} ms fastest of {times.Count} " +
                $"(MPI_Allreduce alone {rawMedian:F1} ms median, {rawTimes[0]:F1} ms fastest); bus bandwidth {busGBps:F2} GB/s"));
        return DdpmCli.Ok;
    }
}
