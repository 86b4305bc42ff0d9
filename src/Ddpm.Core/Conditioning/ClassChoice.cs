using Ddpm.Specs;

namespace Ddpm.Conditioning;

/// <summary>
/// The class labels a user's words ask for, and the rules a draw must keep. Written once for both ways of sampling: the
/// runtime's <c>DiffusionModel</c> (checkpoints, TorchSharp) and Ddpm.Onnx's <c>OnnxDiffusionModel</c> (exported files,
/// ONNX Runtime), so <c>--class</c> and <c>--guidance</c> read alike for both. In Ddpm.Core, internal.
/// </summary>
internal static class ClassChoice
{
    /// <summary>
    /// The labels of <paramref name="count"/> images: a class name (any case; a unique prefix will do) or index repeated;
    /// <c>all</c> for the classes in runs of equal length, so a grid with that many columns has one row per class (the count
    /// rounds up to a multiple of the classes); <c>none</c> for the null class (label <c>names.Count</c>), flagged by
    /// <paramref name="nullClass"/> since it draws without guidance.
    /// </summary>
    /// <param name="model">The model's name, for messages.</param>
    /// <param name="names">Class names, entry i naming label i.</param>
    /// <param name="which">A class name or index, "all" or "none".</param>
    /// <param name="count">Images to draw.</param>
    /// <param name="nullClass">Set when <paramref name="which"/> asked for the null class.</param>
    /// <exception cref="ArgumentException">No class or more than one matches <paramref name="which"/>.</exception>
    public static int[] Labels(string model, IReadOnlyList<string> names, string which, int count, out bool nullClass)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(which);
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "Draw at least one image.");
        string word = which.Trim();
        nullClass = word.Equals("none", StringComparison.OrdinalIgnoreCase);
        if (nullClass) return Repeat(names.Count, count);
        if (word.Equals("all", StringComparison.OrdinalIgnoreCase)) return EachClass(names.Count, (count + names.Count - 1) / names.Count);
        return Repeat(Index(model, names, word), count);
    }

    /// <summary><paramref name="count"/> times <paramref name="label"/>.</summary>
    public static int[] Repeat(int label, int count) => Enumerable.Repeat(label, count).ToArray();

    /// <summary><paramref name="perClass"/> labels of each class in turn, class 0 first.</summary>
    public static int[] EachClass(int classes, int perClass) =>
        Enumerable.Range(0, classes).SelectMany(c => Enumerable.Repeat(c, perClass)).ToArray();

    /// <summary><paramref name="count"/> labels with the classes in turn (0, 1, ..., classes - 1, 0, ...): a balanced draw.</summary>
    public static int[] Balanced(int classes, int count) => Enumerable.Range(0, count).Select(i => i % classes).ToArray();

    /// <summary>
    /// Checks a draw of <paramref name="count"/> images with <paramref name="labels"/> at <paramref name="guidance"/> against a
    /// model of <paramref name="classes"/> classes trained with <paramref name="dropout"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Says what is wrong: the label count, a label out of range, the scale, or guidance
    /// that needs a null class the model never learned.</exception>
    public static void Check(int classes, double dropout, IReadOnlyList<int> labels, int count, double guidance)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Count != count)
            throw new ArgumentException($"{labels.Count} class labels for {count} images; give one label per image.");
        int nullClass = classes;
        if (labels.Any(l => l < 0 || l > nullClass))
            throw new ArgumentException($"Class label {labels.First(l => l < 0 || l > nullClass)} is outside 0 .. {nullClass} " +
                                        $"({classes} classes, {nullClass} = the null class).");
        if (!ClassRules.Guidance.Allows(guidance))
            throw new ArgumentException($"The guidance scale must be {ClassRules.Guidance.Text}, got {guidance}.");
        if (ClassRules.GuidanceNeedsDropout(guidance, dropout))
            throw new ArgumentException($"Guidance {guidance} needs the unconditional (null-class) prediction, which this model never learned " +
                                        "(it was trained with class_dropout 0); use guidance 1.");
    }

    /// <summary>"0 t-shirt/top, 1 trouser, ...", for messages.</summary>
    public static string Describe(IReadOnlyList<string> names) => string.Join(", ", names.Select((n, i) => $"{i} {n}"));

    private static int Index(string model, IReadOnlyList<string> names, string word)
    {
        if (int.TryParse(word, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
        {
            if (index < names.Count) return index;
            throw new ArgumentException($"Class {index} is out of range: {model} has classes 0 to {names.Count - 1} ({Describe(names)}).");
        }
        int exact = names.ToList().FindIndex(n => string.Equals(n, word, StringComparison.OrdinalIgnoreCase));
        if (exact >= 0) return exact;
        var prefixed = names.Select((n, i) => (n, i)).Where(p => p.n.StartsWith(word, StringComparison.OrdinalIgnoreCase)).ToList();
        if (prefixed.Count == 1) return prefixed[0].i;
        throw new ArgumentException(prefixed.Count > 1
            ? $"Class '{word}' is ambiguous: it could be {string.Join(" or ", prefixed.Select(p => p.n))}."
            : $"{model} has no class '{word}'; its classes are {Describe(names)} (or an index, 'all', 'none').");
    }
}
