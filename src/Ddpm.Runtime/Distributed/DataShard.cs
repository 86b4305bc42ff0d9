namespace Ddpm.Distributed;

/// <summary>Part <paramref name="Index"/> of <paramref name="Count"/> equal parts of every batch (a rank's share).</summary>
/// <param name="Index">This part, 0-based (the rank).</param>
/// <param name="Count">How many parts (the number of ranks).</param>
public readonly record struct DataShard(int Index, int Count)
{
    /// <summary>The whole batch: one process.</summary>
    public static DataShard Whole => new(0, 1);
}
