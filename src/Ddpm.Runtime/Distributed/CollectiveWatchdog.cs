using System.Diagnostics;
using System.Globalization;

namespace Ddpm.Distributed;

/// <summary>Small messages between ranks, apart from the collectives: the watchdog's heartbeats.</summary>
internal interface IHeartbeatChannel
{
    /// <summary>Sends <paramref name="value"/> to <paramref name="peer"/> without waiting; false (nothing sent) while the previous message to it is still in flight.</summary>
    bool Send(int peer, long value);
    /// <summary>The latest value <paramref name="peer"/> sent, if one has arrived since the last call.</summary>
    bool TryReceive(int peer, out long value);
    /// <summary>Waits a little for messages in flight, then frees the channel.</summary>
    void Close();
}

/// <summary>
/// Ends the job when a collective waits on a rank that shows no sign of life (MPI collectives have no timeout).
/// </summary>
/// <remarks>
/// A timeout on the collective alone cannot tell a frozen rank from rank 0 evaluating or drawing samples for minutes while
/// the others wait. So each rank sends every other rank a heartbeat from a background thread, about ten times per limit:
/// a rank that is busy keeps beating, a frozen or stopped one (a hung machine, SIGSTOP) does not. A beat carries how many
/// collectives its main thread has entered, which says whether the silent rank had reached the one this rank waits in.
/// The check runs only while this rank's main thread waits in a collective, so it never ends the job in the middle of
/// this rank's checkpoint write. Not detected: a rank whose main thread hangs while its heartbeat thread runs, and a rank
/// that freezes while nobody waits on it (it is found at the next collective).
/// </remarks>
internal sealed class CollectiveWatchdog : IDisposable
{
    /// <summary>The beat a rank sends when it leaves (MPI_Finalize): it is no longer expected to beat.</summary>
    public const long Leaving = -1;

    private readonly object gate = new();
    private readonly IHeartbeatChannel channel;
    private readonly Action<string> onSilent;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly TimeSpan[] heard;
    private readonly long[] reached;
    private readonly bool[] left;
    private readonly ManualResetEventSlim stopping = new();
    private readonly Thread thread;
    private long entered; // collectives entered by this rank's main thread
    private bool waiting, firing, disposed;
    private TimeSpan waitingSince;
    private TimeSpan lastRound = TimeSpan.MinValue;
    private string collective = "a collective";

    /// <summary>Starts the heartbeat thread.</summary>
    /// <param name="rank">This rank.</param>
    /// <param name="size">How many ranks.</param>
    /// <param name="limit">How long a collective may wait on a silent rank.</param>
    /// <param name="channel">Carries the beats.</param>
    /// <param name="onSilent">Called once, on the heartbeat thread, with the message naming the silent ranks; it should end the job.</param>
    public CollectiveWatchdog(int rank, int size, TimeSpan limit, IHeartbeatChannel channel, Action<string> onSilent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(limit, TimeSpan.Zero);
        Rank = rank;
        Size = size;
        Limit = limit;
        this.channel = channel;
        this.onSilent = onSilent;
        heard = new TimeSpan[size];
        reached = new long[size];
        left = new bool[size];
        Interval = TimeSpan.FromTicks(Math.Clamp(limit.Ticks / 10, TimeSpan.TicksPerMillisecond * 50, TimeSpan.TicksPerSecond));
        thread = new Thread(Run) { IsBackground = true, Name = "ddpm collective watchdog" };
        thread.Start();
    }

    public int Rank { get; }
    public int Size { get; }
    /// <summary>How long a collective may wait on a silent rank.</summary>
    public TimeSpan Limit { get; }
    /// <summary>Time between heartbeats.</summary>
    public TimeSpan Interval { get; }

    /// <summary>A gap between two rounds longer than this means this process was stopped: half the limit, at least three intervals.</summary>
    private TimeSpan StallGap => TimeSpan.FromTicks(Math.Max(Limit.Ticks / 2, 3 * Interval.Ticks));

    /// <summary>Names the collectives that follow in the message ("step 12's gradient all-reduce").</summary>
    public void Describe(string what)
    {
        lock (gate) collective = what;
    }

    /// <summary>Watches the collective the main thread is about to wait in, until the scope is disposed.</summary>
    public Scope Enter()
    {
        lock (gate)
        {
            entered++;
            waiting = true;
            waitingSince = clock.Elapsed;
        }
        return new Scope(this);
    }

    private void Exit()
    {
        lock (gate)
        {
            waiting = false;
            if (!firing) return;
        }
        // The job is being ended (onSilent): go no further, e.g. into a checkpoint write that would be cut short.
        Thread.Sleep(Timeout.Infinite);
    }

    /// <summary>One round: beat to every peer, take their beats, and end the job if a wait has lasted the limit on a silent peer.</summary>
    internal void Beat()
    {
        long mine;
        lock (gate) mine = entered;
        for (int peer = 0; peer < Size; peer++)
            if (peer != Rank && !left[peer]) channel.Send(peer, mine);
        var now = clock.Elapsed;
        // A round far later than the interval means this process itself did not run (SIGSTOP and then SIGCONT, which
        // mpirun sends before it ends a job, or a frozen machine): it heard nobody because it was not listening, so its
        // silence counts start again instead of blaming its peers.
        if (lastRound != TimeSpan.MinValue && now - lastRound > StallGap)
            lock (gate)
            {
                Array.Fill(heard, now);
                if (waiting) waitingSince = now;
            }
        lastRound = now;
        for (int peer = 0; peer < Size; peer++)
        {
            if (peer == Rank || !channel.TryReceive(peer, out long value)) continue;
            heard[peer] = now;
            if (value == Leaving) left[peer] = true;
            else reached[peer] = value;
        }
        string message;
        lock (gate)
        {
            if (!waiting || firing || now - waitingSince < Limit) return;
            var silent = Enumerable.Range(0, Size).Where(p => p != Rank && !left[p] && now - heard[p] >= Limit).ToList();
            if (silent.Count == 0) return; // every peer is alive: it is busy (rank 0 evaluating) or slow, not frozen
            firing = true;
            message = Message(silent, entered, collective);
        }
        onSilent(message);
    }

    /// <summary>"rank 1 did not reach step 12's gradient all-reduce within 180 s; ending all ranks."</summary>
    private string Message(List<int> silent, long current, string what)
    {
        string seconds = Limit.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        static string Ranks(List<int> ranks) =>
            (ranks.Count == 1 ? "rank " : "ranks ") + string.Join(", ", ranks.Select(r => r.ToString(CultureInfo.InvariantCulture)));
        var notThere = silent.Where(p => reached[p] < current).ToList();
        var stuck = silent.Where(p => reached[p] >= current).ToList();
        var parts = new List<string>();
        if (notThere.Count > 0) parts.Add($"{Ranks(notThere)} did not reach {what} within {seconds} s");
        if (stuck.Count > 0) parts.Add($"{Ranks(stuck)} did not complete {what} within {seconds} s");
        return string.Join(" and ", parts) + "; ending all ranks.";
    }

    private void Run()
    {
        while (!stopping.Wait(Interval))
            Beat();
    }

    /// <summary>Stops the heartbeats and tells the peers this rank leaves (call before MPI_Finalize, after the last collective).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        stopping.Set();
        thread.Join();
        var deadline = clock.Elapsed + TimeSpan.FromSeconds(1);
        for (int peer = 0; peer < Size; peer++)
            while (peer != Rank && !channel.Send(peer, Leaving) && clock.Elapsed < deadline)
                Thread.Sleep(1);
        channel.Close();
        stopping.Dispose();
    }

    /// <summary>The time a collective is watched (a default scope watches nothing).</summary>
    public readonly struct Scope(CollectiveWatchdog? watchdog) : IDisposable
    {
        public void Dispose() => watchdog?.Exit();
    }
}
