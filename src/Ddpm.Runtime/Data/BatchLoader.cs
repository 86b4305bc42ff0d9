using System.Collections.Concurrent;
using Ddpm.Diffusion;
using Ddpm.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Data;

/// <summary>
/// Shuffled mini-batches scaled to [-1, 1], with an optional random horizontal flip.
/// The order and the flips of an epoch depend only on (seed, epoch), so a resumed run sees the
/// same batches as an uninterrupted one. A background task prepares the next batches while the
/// model trains on the current one.
/// </summary>
public sealed class BatchLoader
{
    private const int Prefetch = 3;
    private readonly ImageSet data;
    private readonly bool randomFlip;
    private readonly long seed;
    private readonly DataShard shard = DataShard.Whole;

    /// <summary>Creates a loader over <paramref name="data"/>; it reads the images, it does not copy them.</summary>
    /// <param name="data">The training images.</param>
    /// <param name="batchSize">Images per batch (&gt;= 1); capped at the data set's size.</param>
    /// <param name="randomFlip">Flip each image horizontally with probability 1/2, drawn anew each epoch.</param>
    /// <param name="seed">Seed of the shuffles and flips of every epoch.</param>
    public BatchLoader(ImageSet data, int batchSize, bool randomFlip, long seed)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch_size must be >= 1.");
        this.data = data;
        this.randomFlip = randomFlip;
        this.seed = seed;
        BatchSize = Math.Min(batchSize, data.Count);
        BatchesPerEpoch = data.Count / BatchSize; // the last partial batch is dropped: every batch has one shape
    }

    /// <summary>Images per batch: the requested size, capped at the number of images.</summary>
    public int BatchSize { get; }
    /// <summary>Full batches per epoch; the last partial batch is dropped, so every batch has the same shape.</summary>
    public int BatchesPerEpoch { get; }
    /// <summary>The shape of every batch this loader yields, [<see cref="ShardSize"/>, C, H, W].</summary>
    public long[] BatchShape => new long[] { ShardSize, data.Channels, data.Height, data.Width };

    /// <summary>
    /// Which part of every batch this loader yields (data-parallel training: rank r of N reads images
    /// [r * BatchSize / N, (r + 1) * BatchSize / N) of each batch); the whole batch by default. The order of the
    /// batches does not depend on it, so the ranks together read exactly the batches of one process.
    /// </summary>
    public DataShard Shard
    {
        get => shard;
        init
        {
            if (value.Count < 1 || value.Index < 0 || value.Index >= value.Count)
                throw new ArgumentOutOfRangeException(nameof(value), value, "A shard needs 0 <= index < count.");
            if (BatchSize % value.Count != 0)
                throw new ArgumentException($"batch_size {BatchSize} does not split evenly over {value.Count} ranks; use a multiple of {value.Count}.", nameof(value));
            shard = value;
        }
    }

    /// <summary>Images per batch this loader yields: <see cref="BatchSize"/> / <see cref="DataShard.Count"/>.</summary>
    public int ShardSize => BatchSize / shard.Count;

    /// <summary>
    /// The batches of one epoch from <paramref name="startBatch"/> on, as float32 tensors on <paramref name="device"/>
    /// (default the CPU; to CUDA each batch is copied from pinned memory without waiting for the device).
    /// </summary>
    public IEnumerable<Tensor> Batches(int epoch, int startBatch = 0, Device? device = null)
    {
        if (startBatch < 0 || startBatch > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(startBatch), startBatch, $"startBatch must be in [0, {BatchesPerEpoch}].");
        using var cancel = new CancellationTokenSource();
        using var queue = new BlockingCollection<float[]>(Prefetch);
        // The producer fills recycled buffers: it allocates nothing per batch, so it does not start garbage collections
        // while the training thread is inside libtorch (a GC on another thread can finalize a TorchSharp temporary
        // Scalar mid-call; docs/performance.md, "TorchSharp's temporary Scalars").
        using var free = new BlockingCollection<float[]>();
        for (int i = 0; i < Prefetch + 1; i++) free.Add(new float[(long)ShardSize * data.ImageBytes]);
        var producer = Task.Run(() => Produce(epoch, startBatch, queue, free, cancel.Token));
        try
        {
            foreach (var batch in queue.GetConsumingEnumerable())
            {
                var onDevice = OnDevice(batch, device); // a copy: the buffer can be refilled
                free.Add(batch);
                yield return onDevice;
            }
        }
        finally
        {
            cancel.Cancel();
            try { producer.Wait(); }
            catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException)) { }
        }
    }

    private Tensor OnDevice(float[] batch, Device? device)
    {
        if (device is null || device.type == DeviceType.CPU)
            return tensor(batch, BatchShape, device: CPU);
        using var host = tensor(batch, BatchShape, device: CPU);
        return Devices.FromHost(host, device);
    }

    /// <summary>Fills one batch (scaled to [-1, 1], flipped where the epoch's draw says so).</summary>
    public float[] MakeBatch(int epoch, int batchIndex)
    {
        var (order, flips) = EpochPlan(epoch);
        var batch = new float[(long)ShardSize * data.ImageBytes];
        Fill(order, flips, batchIndex, batch);
        return batch;
    }

    /// <summary>Whether the data has a class per image (<see cref="BatchLabels"/> works).</summary>
    public bool HasLabels => data.Labels is not null;

    /// <summary>The class names of the data, or null when it has none.</summary>
    public IReadOnlyList<string>? ClassNames => data.ClassNames;

    /// <summary>
    /// The classes of the images of batch <paramref name="batchIndex"/> of <paramref name="epoch"/>, in the order
    /// <see cref="Batches"/> and <see cref="MakeBatch"/> put them (flips do not change a class).
    /// </summary>
    /// <exception cref="InvalidOperationException">The data has no labels.</exception>
    public long[] BatchLabels(int epoch, int batchIndex)
    {
        var labels = data.Labels ?? throw new InvalidOperationException("The data set has no class labels.");
        if (batchIndex < 0 || batchIndex >= BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(batchIndex), batchIndex, $"batchIndex must be in [0, {BatchesPerEpoch}).");
        int[] order;
        lock (labelPlanGate)
        {
            // The trainer asks batch after batch of one epoch: shuffle once per epoch, not once per batch.
            if (labelPlan is null || labelPlan.Value.Epoch != epoch) labelPlan = (epoch, EpochPlan(epoch).Order);
            order = labelPlan.Value.Order;
        }
        var result = new long[BatchSize];
        for (int i = 0; i < BatchSize; i++) result[i] = labels[order[batchIndex * BatchSize + i]];
        return result;
    }

    private readonly object labelPlanGate = new();
    private (int Epoch, int[] Order)? labelPlan;

    private void Produce(int epoch, int startBatch, BlockingCollection<float[]> queue, BlockingCollection<float[]> free, CancellationToken token)
    {
        try
        {
            var (order, flips) = EpochPlan(epoch);
            for (int b = startBatch; b < BatchesPerEpoch; b++)
            {
                var batch = free.Take(token);
                Fill(order, flips, b, batch);
                queue.Add(batch, token);
            }
        }
        catch (OperationCanceledException) { }
        finally { queue.CompleteAdding(); }
    }

    private (int[] Order, bool[] Flips) EpochPlan(int epoch)
    {
        var rng = new SplitMix64(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)epoch + 1));
        var order = new int[data.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        for (int i = order.Length - 1; i > 0; i--) // Fisher-Yates
        {
            int j = (int)(rng.Next() % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        var flips = new bool[data.Count];
        if (randomFlip)
            for (int i = 0; i < flips.Length; i++) flips[i] = (rng.Next() & 1) == 1;
        return (order, flips);
    }

    private void Fill(int[] order, bool[] flips, int batchIndex, float[] batch)
    {
        int c = data.Channels, h = data.Height, w = data.Width, size = data.ImageBytes;
        for (int i = 0; i < ShardSize; i++)
        {
            int slot = batchIndex * BatchSize + shard.Index * ShardSize + i;
            var image = data.Image(order[slot]);
            bool flip = flips[slot];
            var target = batch.AsSpan(i * size, size);
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                {
                    int row = (ch * h + y) * w;
                    for (int x = 0; x < w; x++)
                        target[row + x] = image[row + (flip ? w - 1 - x : x)] * (2f / 255f) - 1f;
                }
        }
    }

    /// <summary>A small, fast, platform-independent generator (Steele et al. 2014) for shuffles.</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong state = state;

        public ulong Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
