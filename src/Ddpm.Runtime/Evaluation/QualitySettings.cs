namespace Ddpm.Evaluation;

/// <summary>How <see cref="SampleQuality"/> measures. The defaults are the ones docs/quality.md describes.</summary>
/// <param name="KidSubsets">Subsets KID is averaged over.</param>
/// <param name="KidSubsetSize">Largest subset size; the size used is min(this, n, reference count).</param>
/// <param name="NearestK">k of the precision/recall neighbourhoods.</param>
/// <param name="BatchSize">Images per forward pass of the feature net.</param>
/// <param name="FloorSeed">Seeds the choice of the real training images of a floor and the reference subset of precision/recall.</param>
/// <param name="FeatureNet">How the feature net is trained when it is not cached.</param>
public sealed record QualitySettings(
    int KidSubsets = KernelDistance.DefaultSubsets,
    int KidSubsetSize = KernelDistance.DefaultSubsetSize,
    int NearestK = PrecisionRecall.DefaultK,
    int BatchSize = 250,
    int FloorSeed = 0,
    FeatureNetOptions? FeatureNet = null)
{
    /// <summary>The defaults: 100 KID subsets of up to 1000, k = 3, batches of 250, floor seed 0, default feature net training.</summary>
    public static QualitySettings Default { get; } = new();

    /// <summary><see cref="FeatureNet"/>, or <see cref="Evaluation.FeatureNetOptions.Default"/> when it is null.</summary>
    public FeatureNetOptions FeatureNetOptions => FeatureNet ?? FeatureNetOptions.Default;

    /// <summary>Fewest images a score can be computed on: FID and KID need 2, precision/recall k + 1.</summary>
    public int MinimumCount => Math.Max(2, NearestK + 1);

    /// <summary>Returns these settings after checking their ranges.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of its range (subsets or k below 1, subset size below 2, ...).</exception>
    public QualitySettings Validated()
    {
        if (KidSubsets < 1) throw new ArgumentOutOfRangeException(nameof(KidSubsets), KidSubsets, "KidSubsets must be >= 1.");
        if (KidSubsetSize < 2) throw new ArgumentOutOfRangeException(nameof(KidSubsetSize), KidSubsetSize, "KidSubsetSize must be >= 2.");
        if (NearestK < 1) throw new ArgumentOutOfRangeException(nameof(NearestK), NearestK, "NearestK must be >= 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        FeatureNetOptions.Validated();
        return this;
    }
}
