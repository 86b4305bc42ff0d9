namespace Ddpm.Evaluation;

/// <summary>
/// How often a class-conditional model draws what it was asked for: per class, the images requested and the images the
/// feature net assigns to that class (the measure of issue-style "90% correct at the best guidance").
/// </summary>
/// <param name="ClassNames">The data set's classes, in label order.</param>
/// <param name="Requested">Images requested per class.</param>
/// <param name="Correct">Of those, the images the feature net classifies as the requested class.</param>
public sealed record ClassAgreement(IReadOnlyList<string> ClassNames, IReadOnlyList<int> Requested, IReadOnlyList<int> Correct)
{
    /// <summary>Share of all requested (non-null) images classified as their class.</summary>
    public double Overall => Requested.Sum() == 0 ? 0 : (double)Correct.Sum() / Requested.Sum();

    /// <summary>Share correct per class (0 for a class not requested).</summary>
    public IReadOnlyList<double> Shares => Requested.Select((n, i) => n == 0 ? 0.0 : (double)Correct[i] / n).ToArray();

    /// <summary>
    /// Compares <paramref name="requested"/> labels with <paramref name="predicted"/> ones, image by image; labels outside the
    /// classes (the null class) are not counted.
    /// </summary>
    public static ClassAgreement Compare(IReadOnlyList<int> requested, IReadOnlyList<int> predicted, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(requested);
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(classNames);
        if (requested.Count != predicted.Count)
            throw new ArgumentException($"{requested.Count} requested labels for {predicted.Count} classified images.", nameof(requested));
        var asked = new int[classNames.Count];
        var correct = new int[classNames.Count];
        for (int i = 0; i < requested.Count; i++)
        {
            int label = requested[i];
            if (label < 0 || label >= classNames.Count) continue;
            asked[label]++;
            if (predicted[i] == label) correct[label]++;
        }
        return new ClassAgreement(classNames, asked, correct);
    }

    /// <inheritdoc/>
    public bool Equals(ClassAgreement? other) =>
        other is not null && ClassNames.SequenceEqual(other.ClassNames) && Requested.SequenceEqual(other.Requested) && Correct.SequenceEqual(other.Correct);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(ClassNames.Count, Requested.Sum(), Correct.Sum());
}
