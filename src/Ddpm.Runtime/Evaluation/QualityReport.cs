namespace Ddpm.Evaluation;

/// <summary>
/// The scores of one set of images against a data set's test split, in the feature space of the data set's
/// feature net, with the same scores for real training images at the same n (<see cref="Floor"/>).
/// </summary>
/// <param name="Dataset">The data set the images are measured against, e.g. fashion-mnist.</param>
/// <param name="Count">n: the number of images scored.</param>
/// <param name="Fid">Frechet distance between Gaussians fitted to the images' and the test split's features (lower is better).</param>
/// <param name="KidMean">KID (unbiased MMD^2, cubic kernel) averaged over subsets (lower is better; about 0 for real images).</param>
/// <param name="KidStd">Standard deviation of KID over the subsets.</param>
/// <param name="Precision">Share of images inside the real manifold (k-NN radii of a test subset of size n).</param>
/// <param name="Recall">Share of that test subset inside the images' manifold.</param>
/// <param name="Classes">The feature net's predicted classes of the images.</param>
/// <param name="ClassifierAccuracy">The feature net's accuracy on the test split, in [0, 1]: how much its features can be trusted.</param>
/// <param name="ReferenceCount">Test images the FID statistics come from.</param>
/// <param name="KidSubsets">Subsets KID was averaged over.</param>
/// <param name="KidSubsetSize">Images per KID subset.</param>
/// <param name="NearestK">k of precision and recall.</param>
/// <param name="Seed">Seed of the KID subsets.</param>
/// <param name="Floor">The same scores for n real training images (null in a floor itself).</param>
/// <param name="Agreement">For images drawn by class: how many the feature net assigns to the class asked for; null otherwise.</param>
public sealed record QualityReport(
    string Dataset,
    int Count,
    double Fid,
    double KidMean,
    double KidStd,
    double Precision,
    double Recall,
    ClassHistogram Classes,
    double ClassifierAccuracy,
    int ReferenceCount,
    int KidSubsets,
    int KidSubsetSize,
    int NearestK,
    int Seed,
    QualityReport? Floor,
    ClassAgreement? Agreement = null)
{
    /// <summary>Entropy of the predicted classes, in bits (log2(classes) when every class is equally frequent).</summary>
    public double ClassEntropyBits => Classes.EntropyBits;
}
