using Ddpm.Data;
using Ddpm.Distributed;
using Ddpm.Training;
using TorchSharp;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>
/// Data-parallel training without MPI: ranks are threads of this process joined by <see cref="ThreadGroup"/>, an in-memory
/// group with MPI's semantics (every rank gets the same sum, added in rank order). The MPI transport itself is tested by
/// Ddpm.Cli.Tests' DataParallelTests under mpirun.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class DataParallelTests
{
    [Fact]
    public void Two_ranks_with_half_batches_train_identical_replicas_that_match_one_process_with_the_whole_batch()
    {
        var spec = Spec(steps: 8);
        // Rank 1 starts from other weights: only rank 0's broadcast makes the replicas equal.
        var ranks = TrainRanks(spec, modelSeeds: [7, 8]);
        var single = TrainRanks(spec, modelSeeds: [7]);

        var (a, b) = (ranks[0], ranks[1]);
        Assert.Equal(a.Losses, b.Losses); // the mean over the ranks, on every rank
        foreach (var ((x, y), z) in a.State.Zip(b.State).Zip(single[0].State))
        {
            Assert.True(Identical(x, y), "the two ranks' weights differ");
            // Only the order of float32 additions differs from one process (see Ddpm.Cli.Tests' DataParallelTests).
            Assert.True((x - z).abs().max().item<float>() < 2e-4, "the ranks' weights differ from one process's");
        }
        Assert.Equal(single[0].Losses[0], a.Losses[0], 6);
    }

    [Fact]
    public void A_replica_that_drifts_stops_every_rank_at_the_next_check()
    {
        var spec = Spec(steps: 6);
        // After step 1, rank 1's weights move by 1e-3: the check after step 2 finds it on both ranks.
        var errors = TrainRanks(spec, modelSeeds: [7, 7], checkEvery: 2, afterStep: (rank, step, model) =>
        {
            if (rank == 1 && step == 1)
                using (no_grad()) model.parameters().First().add_(1e-3);
        }).Select(r => r.Error).ToArray();
        Assert.All(errors, e =>
        {
            var diverged = Assert.IsType<ReplicasDivergedException>(e);
            Assert.Equal(2, diverged.Step);
            Assert.Equal(1, diverged.Differing);
        });
    }

    [Fact]
    public void Gradients_are_averaged_in_contiguous_buckets_no_larger_than_asked()
    {
        using var model = new SmallTestUNet(7);
        var parameters = model.parameters().ToArray();
        using (no_grad())
            foreach (var p in parameters) p.grad = full_like(p, 3.0f).DetachFromDisposeScope();
        long total = parameters.Sum(p => p.numel()), largest = parameters.Max(p => p.numel());
        var group = new RecordingGroup(otherRank: 1.0f); // the other rank's gradients are all 1
        using var parallel = new DataParallel(group, bucketBytes: 16 * 1024);

        parallel.AverageGradients(parameters);

        Assert.True(parallel.BucketCount > 2, $"{total} floats in buckets of 4096 should make several, not {parallel.BucketCount}");
        Assert.Equal(parallel.BucketCount, group.Calls.Count);
        Assert.Equal(total, group.Calls.Sum());
        Assert.All(group.Calls, n => Assert.True(n <= Math.Max(4096, largest)));
        Assert.All(parameters, p => Assert.True(Identical(p.grad!, full_like(p, 2.0f)))); // (3 + 1) / 2
    }

    [Fact]
    public void The_shards_of_a_batch_are_the_batch()
    {
        var data = Bars();
        var whole = new BatchLoader(data, 16, randomFlip: true, seed: 5);
        var shards = Enumerable.Range(0, 4).Select(r => new BatchLoader(data, 16, true, 5) { Shard = new DataShard(r, 4) }).ToArray();
        Assert.Equal(whole.BatchesPerEpoch, shards[0].BatchesPerEpoch);
        Assert.Equal([4L, 1, 8, 8], shards[0].BatchShape);
        for (int batch = 0; batch < whole.BatchesPerEpoch; batch++)
            Assert.Equal(whole.MakeBatch(2, batch), shards.SelectMany(s => s.MakeBatch(2, batch)).ToArray());
        var error = Assert.Throws<ArgumentException>(() => new BatchLoader(data, 16, true, 5) { Shard = new DataShard(0, 3) });
        Assert.Contains("batch_size 16 does not split evenly over 3 ranks", error.Message);
    }

    private sealed record RankResult(List<double> Losses, Tensor[] State, Exception? Error);

    /// <summary>Trains one rank per model seed, each on its own thread, and returns each rank's losses, final state or error.</summary>
    private static RankResult[] TrainRanks(Specs.TrainingSpec spec, long[] modelSeeds, int checkEvery = 100,
                                           Action<int, long, nn.Module<Tensor, Tensor, Tensor>>? afterStep = null)
    {
        int size = modelSeeds.Length;
        var group = new ThreadGroup(size);
        var results = new RankResult[size];
        var threads = Enumerable.Range(0, size).Select(rank => new Thread(() =>
        {
            var losses = new List<double>();
            var model = new SmallTestUNet(modelSeeds[rank]);
            var member = group.Join(rank);
            using var parallel = new DataParallel(member, checkEvery);
            nn.Module<Tensor, Tensor, Tensor>? trained = null;
            var callbacks = new TrainingCallbacks
            {
                Progress = new SyncProgress<TrainingProgress>(p =>
                {
                    losses.Add(p.Loss);
                    afterStep?.Invoke(rank, p.Step, trained!);
                }),
            };
            var loader = new BatchLoader(Bars(), spec.BatchSize, spec.RandomFlip, spec.Seed) { Shard = new DataShard(rank, size) };
            using var trainer = new Trainer(model, MakeDiffusion(), loader, spec, () => new SmallTestUNet(modelSeeds[rank]), callbacks)
            {
                Parallel = parallel,
            };
            trained = model;
            Exception? error = null;
            try { trainer.Train(); }
            catch (ReplicasDivergedException e) { error = e; }
            var state = model.state_dict().Values.Concat(trainer.EmaModel!.state_dict().Values).Select(t => t.detach().clone().DetachFromDisposeScope()).ToArray();
            results[rank] = new RankResult(losses, state, error);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a rank did not finish"));
        Assert.All(results, r => Assert.NotNull(r));
        return results;
    }

    /// <summary>Ranks as threads: every collective waits for all of them, sums in rank order, and gives all the same result.</summary>
    private sealed class ThreadGroup(int size)
    {
        private readonly Barrier barrier = new(size);
        private readonly float[]?[] slots = new float[size][];
        private byte[] broadcast = [];

        public IProcessGroup Join(int rank) => new Member(this, rank);

        private void AllReduceSum(int rank, Span<float> buffer)
        {
            slots[rank] = buffer.ToArray();
            barrier.SignalAndWait();
            for (int i = 0; i < buffer.Length; i++)
            {
                float sum = 0;
                for (int r = 0; r < size; r++) sum += slots[r]![i];
                buffer[i] = sum;
            }
            barrier.SignalAndWait(); // nobody overwrites a slot before everyone has read it
        }

        private void Broadcast<T>(int rank, Span<T> buffer) where T : unmanaged
        {
            if (rank == 0) broadcast = System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer).ToArray();
            barrier.SignalAndWait();
            if (rank != 0) broadcast.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer));
            barrier.SignalAndWait();
        }

        private sealed class Member(ThreadGroup group, int rank) : IProcessGroup
        {
            public int Rank => rank;
            public int Size => group.slots.Length;
            public void AllReduceSum(Span<float> buffer) => group.AllReduceSum(rank, buffer);
            public void Broadcast(Span<float> buffer) => group.Broadcast(rank, buffer);
            public void Broadcast(Span<byte> buffer) => group.Broadcast(rank, buffer);
            public void Barrier() => group.barrier.SignalAndWait();
            public void Abort(int exitCode) => throw new InvalidOperationException($"rank {rank} aborted ({exitCode})");
            public void Dispose() { }
        }
    }

    /// <summary>Rank 0 of 2 whose partner's buffers hold <paramref name="otherRank"/> everywhere; records each allreduce's length.</summary>
    private sealed class RecordingGroup(float otherRank) : IProcessGroup
    {
        public List<int> Calls { get; } = [];
        public int Rank => 0;
        public int Size => 2;
        public void AllReduceSum(Span<float> buffer)
        {
            Calls.Add(buffer.Length);
            foreach (ref float x in buffer) x += otherRank;
        }
        public void Broadcast(Span<float> buffer) { }
        public void Broadcast(Span<byte> buffer) { }
        public void Barrier() { }
        public void Abort(int exitCode) => throw new InvalidOperationException("aborted");
        public void Dispose() { }
    }
}
