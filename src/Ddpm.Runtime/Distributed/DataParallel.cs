using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Distributed;

/// <summary>
/// Data-parallel training over a process group, the way PyTorch's DistributedDataParallel and Horovod do it: rank 0's state
/// is broadcast at the start, every step the gradients are averaged over the ranks in a few contiguous buckets (not one call
/// per parameter), and since every rank then takes the same optimiser step on the same averaged gradients, weights and EMA
/// stay identical. Every <see cref="CheckEvery"/> steps the ranks compare a checksum of their weights.
/// </summary>
/// <remarks>
/// The trainer calls it at three points (start, after backward, after the optimiser step); with
/// <see cref="SingleProcess"/> every call returns at once and nothing is copied.
/// Collectives run on host memory: gradients on a GPU are copied to a host bucket and back (docs/scaling.md).
/// </remarks>
public sealed class DataParallel : IDisposable
{
    /// <summary>Default bucket size: 25 MiB of float32 gradients, PyTorch DDP's default.</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly long bucketElements;
    private List<(int Start, int Count, long Elements)>? gradientBuckets;
    private Tensor[] gradientBuffers = [];

    /// <summary>Trains over <paramref name="group"/>.</summary>
    /// <param name="group">The ranks; <see cref="SingleProcess.Instance"/> for one process.</param>
    /// <param name="checkEvery">Compare the weights' checksums every this many steps (0: never).</param>
    /// <param name="bucketBytes">The largest gradient bucket, in bytes (a parameter larger than this has a bucket of its own).</param>
    public DataParallel(IProcessGroup group, int checkEvery = 100, long bucketBytes = DefaultBucketBytes)
    {
        Group = group ?? throw new ArgumentNullException(nameof(group));
        ArgumentOutOfRangeException.ThrowIfNegative(checkEvery);
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketBytes, sizeof(float));
        CheckEvery = checkEvery;
        bucketElements = bucketBytes / sizeof(float);
    }

    /// <summary>The ranks training together.</summary>
    public IProcessGroup Group { get; }
    /// <summary>Steps between checksum comparisons (0: never).</summary>
    public int CheckEvery { get; }
    /// <summary>True when more than one rank trains: only then is anything communicated.</summary>
    public bool IsDistributed => Group.Size > 1;
    /// <summary>Gradient buckets of the last step (0 before the first).</summary>
    public int BucketCount => gradientBuckets?.Count ?? 0;
    /// <summary>Time spent in the gradient allreduce (including the copies into and out of the buckets), summed over steps.</summary>
    public TimeSpan AllReduceTime { get; private set; }
    /// <summary>Gradient allreduces done (one per step).</summary>
    public long AllReduceCount { get; private set; }
    /// <summary>The checksum of the last comparison (<see cref="CheckReplicas"/>) that found every rank equal; 0 before one.</summary>
    public ulong LastChecksum { get; private set; }

    /// <summary>Replaces every tensor's values with rank 0's, in buckets (float32 tensors only; others are left as they are).</summary>
    public void Broadcast(IEnumerable<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (!IsDistributed) return;
        var floats = tensors.Where(t => t.dtype == ScalarType.Float32).ToList();
        Group.Describe("the broadcast of rank 0's weights at the start");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (start, count, elements) in Buckets(floats.Select(t => t.numel()).ToList()))
        {
            var buffer = zeros(elements, dtype: ScalarType.Float32);
            Pack(floats, start, count, buffer);
            Group.Broadcast(Floats(buffer));
            Unpack(buffer, floats, start, count);
        }
    }

    /// <summary>
    /// Replaces every parameter's gradient with its mean over the ranks (the sum divided by the rank count): the gradient of
    /// the mean loss over the global batch when each rank's loss is the mean over its shard of equal size.
    /// </summary>
    /// <param name="parameters">The model's parameters, with gradients.</param>
    /// <param name="step">The 1-based step, named if a watchdog ends the job (0: unnamed).</param>
    public void AverageGradients(IReadOnlyList<Parameter> parameters, long step = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!IsDistributed) return;
        Group.Describe(Collective(step, "gradient all-reduce"));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var gradients = parameters.Select((p, i) => p.grad ?? throw new InvalidOperationException($"Parameter {i} has no gradient to average; call backward first.")).ToList();
        if (gradientBuckets is null)
        {
            gradientBuckets = Buckets(gradients.Select(g => g.numel()).ToList());
            gradientBuffers = gradientBuckets.Select(b => zeros(b.Elements, dtype: ScalarType.Float32).DetachFromDisposeScope()).ToArray();
        }
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        for (int b = 0; b < gradientBuckets.Count; b++)
        {
            var (start, count, _) = gradientBuckets[b];
            var buffer = gradientBuffers[b];
            Pack(gradients, start, count, buffer);
            Group.AllReduceSum(Floats(buffer));
            buffer.div_(Group.Size);
            Unpack(buffer, gradients, start, count);
        }
        AllReduceTime += watch.Elapsed;
        AllReduceCount++;
    }

    /// <summary>The mean of <paramref name="value"/> over the ranks (float32, as the loss is computed); <paramref name="step"/> as in <see cref="AverageGradients"/>.</summary>
    public double Average(double value, long step = 0)
    {
        if (!IsDistributed) return value;
        Group.Describe(Collective(step, "loss average"));
        Span<float> buffer = [(float)value];
        Group.AllReduceSum(buffer);
        return buffer[0] / Group.Size;
    }

    /// <summary>Whether step <paramref name="step"/> (1-based) compares checksums: every <see cref="CheckEvery"/> steps.</summary>
    public bool CheckDue(long step) => IsDistributed && CheckEvery > 0 && step % CheckEvery == 0;

    /// <summary>
    /// Compares this rank's <see cref="Checksum"/> of <paramref name="tensors"/> with rank 0's; every rank learns how many differ
    /// and all throw the same <see cref="ReplicasDivergedException"/> if any does. Returns the checksum.
    /// </summary>
    public ulong CheckReplicas(long step, IEnumerable<Tensor> tensors)
    {
        ulong mine = Checksum(tensors);
        if (!IsDistributed) return LastChecksum = mine;
        Group.Describe(Collective(step, "replica check"));
        var primary = BitConverter.GetBytes(mine);
        Group.Broadcast(primary);
        ulong expected = BitConverter.ToUInt64(primary);
        Span<float> differing = [mine == expected ? 0f : 1f];
        Group.AllReduceSum(differing);
        if (differing[0] > 0)
            throw new ReplicasDivergedException(step, (int)differing[0], Group.Size, Group.Rank, mine, expected);
        return LastChecksum = mine;
    }

    /// <summary>
    /// A 64-bit FNV-1a hash of the tensors' float32 bit patterns, in order: equal on two ranks exactly when (barring a hash
    /// collision) every weight is bit for bit the same.
    /// </summary>
    public static ulong Checksum(IEnumerable<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ulong hash = 0xCBF29CE484222325UL;
        foreach (var tensor in tensors)
        {
            using var scope = NewDisposeScope();
            var host = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
            foreach (uint bits in MemoryMarshal.Cast<byte, uint>(host.bytes))
                hash = (hash ^ bits) * 0x100000001B3UL;
        }
        return hash;
    }

    private static string Collective(long step, string what) =>
        step > 0 ? string.Create(CultureInfo.InvariantCulture, $"step {step}'s {what}") : $"the {what}";

    /// <summary>Frees the gradient buckets.</summary>
    public void Dispose()
    {
        foreach (var buffer in gradientBuffers) buffer.Dispose();
        gradientBuffers = [];
        gradientBuckets = null;
    }

    /// <summary>Contiguous runs of tensors, each at most <see cref="DefaultBucketBytes"/> unless one tensor alone is larger.</summary>
    private List<(int Start, int Count, long Elements)> Buckets(IReadOnlyList<long> sizes)
    {
        var buckets = new List<(int, int, long)>();
        int start = 0;
        long elements = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            if (i > start && elements + sizes[i] > bucketElements)
            {
                buckets.Add((start, i - start, elements));
                start = i;
                elements = 0;
            }
            elements += sizes[i];
        }
        if (sizes.Count > start) buckets.Add((start, sizes.Count - start, elements));
        return buckets;
    }

    private static void Pack(IReadOnlyList<Tensor> tensors, int start, int count, Tensor buffer)
    {
        long offset = 0;
        for (int i = start; i < start + count; i++)
        {
            long n = tensors[i].numel();
            buffer.narrow(0, offset, n).copy_(tensors[i].reshape(-1));
            offset += n;
        }
    }

    private static void Unpack(Tensor buffer, IReadOnlyList<Tensor> tensors, int start, int count)
    {
        long offset = 0;
        for (int i = start; i < start + count; i++)
        {
            long n = tensors[i].numel();
            tensors[i].copy_(buffer.narrow(0, offset, n).view(tensors[i].shape));
            offset += n;
        }
    }

    private static Span<float> Floats(Tensor buffer) => MemoryMarshal.Cast<byte, float>(buffer.bytes);
}

/// <summary>
/// The ranks' weights are no longer identical (a rank computed differently: another thread count or library build, a fault):
/// training stops, on every rank, before any of that state is checkpointed.
/// </summary>
public sealed class ReplicasDivergedException : Exception
{
    /// <summary>Creates the exception; the message names the step, how many ranks differ and both checksums.</summary>
    public ReplicasDivergedException(long step, int differing, int ranks, int rank, ulong checksum, ulong primaryChecksum)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"The ranks' weights differ at step {step}: {differing} of {ranks} ranks do not match rank 0 (rank {rank}: checksum {checksum:x16}, rank 0: {primaryChecksum:x16}). ") +
            "Every rank must run the same ddpm build with the same torch thread count (OMP_NUM_THREADS). " +
            "No checkpoint of this state was written; resume from the last one.")
    {
        Step = step;
        Differing = differing;
    }

    /// <summary>The 1-based step after which the weights were compared.</summary>
    public long Step { get; }
    /// <summary>How many ranks differ from rank 0.</summary>
    public int Differing { get; }
}
