using System.Collections.Concurrent;
using System.Diagnostics;
using Ddpm.Distributed;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>
/// The collective watchdog's decisions without MPI: the heartbeats come from a fake channel in which each peer beats,
/// falls silent or leaves as the test says. The MPI transport and the whole job's ending are tested by Ddpm.Cli.Tests'
/// DataParallelTests (a rank stopped with SIGSTOP under mpirun).
/// </summary>
public sealed class CollectiveWatchdogTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMilliseconds(500);

    [Fact]
    public void A_silent_rank_is_named_once_the_wait_has_lasted_the_limit_and_a_rank_that_beats_is_not()
    {
        var channel = new FakeChannel();
        channel.Beating[1] = 1; // rank 1 is alive and has reached collective 1
        var fired = new Fired();
        using var watchdog = new CollectiveWatchdog(0, 3, Limit, channel, fired.Add);
        watchdog.Describe("step 12's gradient all-reduce");
        var watch = Stopwatch.StartNew();
        var scope = watchdog.Enter(); // not disposed: after firing, leaving the collective blocks for good
        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)), "the watchdog did not fire");
        Assert.True(watch.Elapsed >= Limit, $"fired after {watch.Elapsed.TotalMilliseconds} ms, before the limit");
        Assert.Equal(new[] { "rank 2 did not reach step 12's gradient all-reduce within 0.5 s; ending all ranks." }, fired.Messages);
        Thread.Sleep(3 * watchdog.Interval);
        Assert.Single(fired.Messages); // once
        Assert.Contains((2, 1L), channel.Sent); // this rank's beats carry the collectives it entered
    }

    [Fact]
    public void A_rank_that_reached_the_collective_and_then_fell_silent_did_not_complete_it()
    {
        var channel = new FakeChannel();
        channel.Once[1] = 1; // rank 1 beats once, in collective 1, then stops (SIGSTOP)
        var fired = new Fired();
        using var watchdog = new CollectiveWatchdog(0, 3, Limit, channel, fired.Add);
        watchdog.Describe("step 3's loss average");
        Assert.True(SpinWait.SpinUntil(() => channel.Once.IsEmpty, TimeSpan.FromSeconds(10))); // rank 1's one beat came before the wait
        _ = watchdog.Enter();
        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)), "the watchdog did not fire");
        Assert.Equal(new[] { "rank 2 did not reach step 3's loss average within 0.5 s and rank 1 did not complete step 3's loss average within 0.5 s; ending all ranks." },
                     fired.Messages);
    }

    [Fact]
    public void A_busy_rank_that_beats_a_silent_rank_outside_a_collective_and_a_rank_that_left_end_nothing()
    {
        var channel = new FakeChannel();
        channel.Beating[1] = 0; // rank 1 beats but has not reached the collective: rank 0 evaluating for minutes
        channel.Once[2] = CollectiveWatchdog.Leaving;
        channel.Once[3] = 0; // rank 3 falls silent, but this rank waits on nobody
        var fired = new Fired();
        using (var watchdog = new CollectiveWatchdog(0, 4, Limit, channel, fired.Add))
        {
            Thread.Sleep(3 * Limit);
            Assert.Empty(fired.Messages);
            channel.Beating[3] = 1; // rank 3 is back and the next wait is on rank 1 (busy) and rank 2 (gone)
            using (watchdog.Enter())
                Thread.Sleep(3 * Limit);
            Assert.Empty(fired.Messages);
        }
        // Leaving: every peer is told, then the channel is closed.
        Assert.Equal(new[] { 1, 2, 3 }, channel.Sent.Where(s => s.Value == CollectiveWatchdog.Leaving).Select(s => s.Peer).Order());
        Assert.True(channel.Closed);
    }

    [Fact]
    public void A_rank_that_was_itself_stopped_starts_its_counts_again_instead_of_naming_its_peers()
    {
        var channel = new FakeChannel();
        channel.Beating[1] = 1;
        var fired = new Fired();
        using var watchdog = new CollectiveWatchdog(0, 2, Limit, channel, fired.Add);
        _ = watchdog.Enter();
        Thread.Sleep(2 * watchdog.Interval);
        // This process stops for twice the limit (its heartbeat thread with it) and rank 1 falls silent meanwhile: on
        // waking, it has heard nobody for longer than the limit, yet it must not blame rank 1 at once.
        channel.Beating.TryRemove(1, out _);
        channel.StallNextSend = 2 * Limit;
        Assert.True(SpinWait.SpinUntil(() => channel.StallNextSend == TimeSpan.Zero && channel.Sent.Count > 0, TimeSpan.FromSeconds(10)));
        var woke = Stopwatch.StartNew();
        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)), "the watchdog did not fire once rank 1 stayed silent for the limit after the stall");
        Assert.True(woke.Elapsed >= Limit * 0.8, $"fired {woke.Elapsed.TotalMilliseconds} ms after the stall ended, before a whole limit of silence");
        Assert.Equal(new[] { "rank 1 did not complete a collective within 0.5 s; ending all ranks." }, fired.Messages);
    }

    private sealed class Fired
    {
        private readonly ManualResetEventSlim any = new();
        public ConcurrentQueue<string> Messages { get; } = new();
        public void Add(string message) { Messages.Enqueue(message); any.Set(); }
        public bool Wait(TimeSpan timeout) => any.Wait(timeout);
    }

    /// <summary>Peers in <see cref="Beating"/> beat every round with their value; those in <see cref="Once"/> beat once.</summary>
    private sealed class FakeChannel : IHeartbeatChannel
    {
        public ConcurrentDictionary<int, long> Beating { get; } = new();
        public ConcurrentDictionary<int, long> Once { get; } = new();
        public ConcurrentQueue<(int Peer, long Value)> Sent { get; } = new();
        public bool Closed { get; private set; }

        /// <summary>The next send blocks this long (the process stopped), then this is reset to zero.</summary>
        public TimeSpan StallNextSend { get; set; }

        public bool Send(int peer, long value)
        {
            if (StallNextSend > TimeSpan.Zero)
            {
                Thread.Sleep(StallNextSend);
                StallNextSend = TimeSpan.Zero;
            }
            Sent.Enqueue((peer, value));
            return true;
        }

        public bool TryReceive(int peer, out long value) => Beating.TryGetValue(peer, out value) || Once.TryRemove(peer, out value);

        public void Close() => Closed = true;
    }
}
