namespace Ddpm.Distributed;

/// <summary>
/// The processes (ranks) that train one model together, and the collective operations data-parallel training needs.
/// Every rank must make the same calls in the same order: a collective returns when all ranks have made it.
/// </summary>
public interface IProcessGroup : IDisposable
{
    /// <summary>This process's index, 0 to <see cref="Size"/> - 1; rank 0 writes checkpoints, samples and logs.</summary>
    int Rank { get; }
    /// <summary>How many processes train together.</summary>
    int Size { get; }
    /// <summary>Replaces <paramref name="buffer"/> with the element-wise sum of every rank's buffer.</summary>
    void AllReduceSum(Span<float> buffer);
    /// <summary>Replaces <paramref name="buffer"/> on every rank with rank 0's.</summary>
    void Broadcast(Span<float> buffer);
    /// <summary>Replaces <paramref name="buffer"/> on every rank with rank 0's (the lengths must agree).</summary>
    void Broadcast(Span<byte> buffer);
    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
    /// <summary>Ends every rank of the job at once with <paramref name="exitCode"/> (after an error on this rank); does not return.</summary>
    void Abort(int exitCode);
    /// <summary>Names the collectives that follow ("step 12's gradient all-reduce") for a watchdog's message; by default nothing.</summary>
    void Describe(string collectives) { }
    /// <summary>What a watchdog that ends the job adds to its message (where the last checkpoint is, how to resume); by default nothing.</summary>
    void NoteRecovery(string note) { }
}

/// <summary>One process training alone: every collective is the identity, so training behaves exactly as without a group.</summary>
public sealed class SingleProcess : IProcessGroup
{
    /// <summary>The one instance.</summary>
    public static readonly SingleProcess Instance = new();

    private SingleProcess() { }

    /// <inheritdoc/>
    public int Rank => 0;
    /// <inheritdoc/>
    public int Size => 1;
    /// <inheritdoc/>
    public void AllReduceSum(Span<float> buffer) { }
    /// <inheritdoc/>
    public void Broadcast(Span<float> buffer) { }
    /// <inheritdoc/>
    public void Broadcast(Span<byte> buffer) { }
    /// <inheritdoc/>
    public void Barrier() { }
    /// <inheritdoc/>
    public void Abort(int exitCode) => Environment.Exit(exitCode);
    /// <inheritdoc/>
    public void Dispose() { }
}
