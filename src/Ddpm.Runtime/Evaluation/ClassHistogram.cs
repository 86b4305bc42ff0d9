namespace Ddpm.Evaluation;

/// <summary>
/// How the feature net's classifier labels a set of images: the count and share of each class and the
/// Shannon entropy of the shares in bits. A model that draws every class equally often scores log2(K)
/// (3.32 bits for 10 classes); one that draws a single class scores 0. Mode collapse shows here first.
/// </summary>
/// <param name="ClassNames">The classifier's class names; entry i names label i.</param>
/// <param name="Counts">How many images were labelled with each class, in the order of <paramref name="ClassNames"/>.</param>
public sealed record ClassHistogram(IReadOnlyList<string> ClassNames, IReadOnlyList<int> Counts)
{
    /// <summary>Number of images counted: the sum of <see cref="Counts"/>.</summary>
    public int Total => Counts.Sum();

    /// <summary>Share of each class, in [0, 1]; all zero for an empty histogram.</summary>
    public IReadOnlyList<double> Shares => Counts.Select(c => Total == 0 ? 0.0 : (double)c / Total).ToArray();

    /// <summary>Shannon entropy of the shares in bits (0 log 0 = 0).</summary>
    public double EntropyBits => Entropy(Shares);

    /// <summary>The largest possible entropy, log2(number of classes), reached by a uniform histogram.</summary>
    public double MaxEntropyBits => Math.Log2(Counts.Count);

    /// <summary>Counts predicted labels (each in [0, number of classes)).</summary>
    public static ClassHistogram FromLabels(IEnumerable<int> labels, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count < 1) throw new ArgumentException("At least one class is needed.", nameof(classNames));
        var counts = new int[classNames.Count];
        foreach (int label in labels)
        {
            if (label < 0 || label >= counts.Length)
                throw new ArgumentOutOfRangeException(nameof(labels), label, $"Labels must be in [0, {counts.Length - 1}].");
            counts[label]++;
        }
        return new ClassHistogram(classNames.ToArray(), counts);
    }

    /// <summary>-sum p log2 p over the shares (which should add up to 1).</summary>
    public static double Entropy(IEnumerable<double> shares)
    {
        double entropy = 0;
        foreach (double p in shares)
            if (p > 0) entropy -= p * Math.Log2(p);
        return entropy;
    }

    // Records compare lists by reference; compare the contents.
    /// <summary>Equal when the class names and the counts are equal, element by element (not by list reference).</summary>
    public bool Equals(ClassHistogram? other) =>
        other is not null && ClassNames.SequenceEqual(other.ClassNames) && Counts.SequenceEqual(other.Counts);

    /// <summary>A hash consistent with <see cref="Equals(ClassHistogram)"/>: of the class count and the total.</summary>
    public override int GetHashCode() => HashCode.Combine(ClassNames.Count, Total);
}
