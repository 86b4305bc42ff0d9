using Ddpm.Specs;

namespace Ddpm.Conditioning;

/// <summary>
/// What to draw from a class-conditional model: one label per image (<see cref="ClassConditioning.NullClass"/> for an
/// unconditional image) and the classifier-free guidance scale.
/// </summary>
/// <param name="Labels">The class of each image to draw, in order.</param>
/// <param name="Guidance">eps = eps(x, null) + Guidance * (eps(x, class) - eps(x, null)): 1 = the conditional model alone,
/// above 1 = more like the class, less varied; 0 = the null class alone.</param>
public sealed record ClassCondition(IReadOnlyList<int> Labels, double Guidance)
{
    /// <summary>Every one of <paramref name="count"/> images of class <paramref name="label"/>.</summary>
    public static ClassCondition Repeat(int label, int count, double guidance) => new(ClassChoice.Repeat(label, count), guidance);

    /// <summary>
    /// <paramref name="perClass"/> images of each class in turn (class 0 first): a grid with <paramref name="perClass"/> columns
    /// has one row per class.
    /// </summary>
    public static ClassCondition EachClass(int classes, int perClass, double guidance) => new(ClassChoice.EachClass(classes, perClass), guidance);

    /// <summary><paramref name="count"/> images with the classes in turn (0, 1, ..., Classes - 1, 0, ...): a balanced draw.</summary>
    public static ClassCondition Balanced(int classes, int count, double guidance) => new(ClassChoice.Balanced(classes, count), guidance);

    /// <summary>Checks the labels and the scale against <paramref name="conditioning"/>; throws <see cref="ArgumentException"/> saying what is wrong.</summary>
    public void Check(ClassConditioning conditioning, int count)
    {
        ArgumentNullException.ThrowIfNull(conditioning);
        ClassChoice.Check(conditioning.Classes, conditioning.Dropout, Labels, count, Guidance);
    }
}
