using System.Globalization;
using Ddpm.Data;
using static TorchSharp.torch;

namespace Ddpm.Evaluation;

/// <summary>
/// Measures how close images are to a labelled data set: FID, KID, precision/recall and the class histogram,
/// each beside its floor (the same scores for as many real training images). Created once per data set: it
/// takes the data set's feature net (shipped, cached, or trained and cached) and featurises the test split, the
/// reference of every score, once. Floors are computed on first use for each n and kept.
/// </summary>
/// <example>
/// <code>
/// using var quality = SampleQuality.Create("fashion-mnist", log: Console.WriteLine);
/// QualityReport report = quality.Score(samples, seed: 0);   // samples: [N, 1, 28, 28] in [-1, 1]
/// Console.Write(QualityTable.Render(report));
/// </code>
/// </example>
public sealed class SampleQuality : IDisposable
{
    private readonly CachedFeatureNet featureNet;
    private readonly FeatureSet reference;
    private readonly GaussianFit referenceFit;
    private readonly Dictionary<int, QualityReport> floors = new();
    private readonly Lock gate = new();

    /// <summary>Loads the labelled data set named <paramref name="dataset"/> (see <see cref="LabelledDatasets.Load"/>) and prepares it.</summary>
    public static SampleQuality Create(string dataset, Action<string>? log = null, QualitySettings? settings = null)
        => new(LabelledDatasets.Load(dataset, log), log, settings);

    /// <summary>
    /// Prepares scoring against <paramref name="data"/>: takes its feature net (the one shipped for this data, else the cached
    /// one, else one trained now and cached; <see cref="FeatureNetCache.LoadOrTrain(LabelledDataset, FeatureNetOptions?, Action{string}?)"/>)
    /// and featurises its test split.
    /// </summary>
    /// <param name="data">The labelled data set; validated first.</param>
    /// <param name="log">Receives the feature net's and the reference statistics' progress lines.</param>
    /// <param name="settings">How to measure; <see cref="QualitySettings.Default"/> when null.</param>
    public SampleQuality(LabelledDataset data, Action<string>? log = null, QualitySettings? settings = null)
        : this(data, log, settings, FeatureNetCatalog.Shipped)
    {
    }

    /// <summary>As the public constructor, with the ready-made feature nets of <paramref name="catalog"/> instead of the shipped ones.</summary>
    internal SampleQuality(LabelledDataset data, Action<string>? log, QualitySettings? settings, FeatureNetCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(data);
        Data = data.Validated();
        Settings = (settings ?? QualitySettings.Default).Validated();
        featureNet = FeatureNetCache.LoadOrTrain(data, Settings.FeatureNetOptions, log, catalog);
        try
        {
            using var extractor = new FeatureExtractor(featureNet.Net, Settings.BatchSize);
            reference = extractor.Extract(data.TestImages).Features;
            referenceFit = GaussianFit.Fit(reference);
            log?.Invoke($"feature net: reference statistics of {reference.Count:N0} test images ready");
        }
        catch
        {
            featureNet.Dispose();
            throw;
        }
    }

    /// <summary>The data set images are measured against.</summary>
    public LabelledDataset Data { get; }
    /// <summary>The validated measurement settings.</summary>
    public QualitySettings Settings { get; }
    /// <summary>The data set's name, e.g. fashion-mnist.</summary>
    public string Dataset => Data.Name;
    /// <summary>Channels the scored images must have.</summary>
    public int Channels => Data.Channels;
    /// <summary>Height and width the scored images must have.</summary>
    public int ImageSize => Data.ImageSize;
    /// <summary>The data set's classes, in label order.</summary>
    public IReadOnlyList<string> ClassNames => Data.ClassNames;

    /// <summary>The feature net's accuracy on the test split, in [0, 1].</summary>
    public double ClassifierAccuracy => featureNet.Info.TestAccuracy;

    /// <summary>What the feature net is and where it is cached.</summary>
    public FeatureNetInfo FeatureNet => featureNet.Info;
    /// <summary>The cache file of the feature net; for a shipped net, its file name and origin (<see cref="CachedFeatureNet.Path"/>).</summary>
    public string FeatureNetPath => featureNet.Path;
    /// <summary>True when the feature net is one shipped with Ddpm.Runtime: the same net, and so comparable scores, on every machine.</summary>
    public bool FeatureNetShipped => featureNet.Shipped;

    /// <summary>Scores float images [N, C, H, W] in [-1, 1] (the model's output scale); <paramref name="seed"/> draws the KID subsets.</summary>
    /// <param name="images">The images to score.</param>
    /// <param name="seed">Seed of the KID subsets.</param>
    /// <param name="requestedClasses">For images drawn by class, the class asked for of each (the report then has its
    /// <see cref="QualityReport.Agreement"/>); null otherwise.</param>
    public QualityReport Score(Tensor images, int seed, IReadOnlyList<int>? requestedClasses = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckShape(images.shape);
        using var extractor = new FeatureExtractor(featureNet.Net, Settings.BatchSize);
        var (features, predictions) = extractor.Extract(images);
        var agreement = requestedClasses is null ? null : ClassAgreement.Compare(requestedClasses, predictions, Data.ClassNames);
        return Measure(features, predictions, seed) with { Floor = Floor(features.Count), Agreement = agreement };
    }

    /// <summary>Scores 8-bit images (decoded PNGs, .npy arrays); <paramref name="seed"/> draws the KID subsets.</summary>
    public QualityReport Score(ImageSet images, int seed)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckShape([images.Count, images.Channels, images.Height, images.Width]);
        using var extractor = new FeatureExtractor(featureNet.Net, Settings.BatchSize);
        var (features, predictions) = extractor.Extract(images);
        return Measure(features, predictions, seed) with { Floor = Floor(features.Count) };
    }

    /// <summary>
    /// The floor at n: the scores of n real training images (a subset drawn with <see cref="QualitySettings.FloorSeed"/>;
    /// all of them when the split is smaller) against the same reference. Computed once per n.
    /// </summary>
    public QualityReport Floor(int count)
    {
        if (count < Settings.MinimumCount)
            throw new ArgumentOutOfRangeException(nameof(count), count, TooFew(count));
        lock (gate)
        {
            if (floors.TryGetValue(count, out var cached)) return cached;
            var train = Data.TrainImages;
            int n = Math.Min(count, train.Count);
            var rows = KernelDistance.Draw(new Random(Settings.FloorSeed), train.Count, n);
            using var extractor = new FeatureExtractor(featureNet.Net, Settings.BatchSize);
            var (features, predictions) = extractor.Extract(train, rows);
            var floor = Measure(features, predictions, Settings.FloorSeed);
            floors[count] = floor;
            return floor;
        }
    }

    /// <summary>The scores of features against the test split, without a floor.</summary>
    private QualityReport Measure(FeatureSet features, int[] predictions, int seed)
    {
        int n = features.Count;
        double fid = FrechetDistance.Compute(GaussianFit.Fit(features), referenceFit);
        var kid = KernelDistance.Compute(features, reference, Settings.KidSubsets, Settings.KidSubsetSize, seed);
        // Precision and recall compare sets of equal size: a fixed test subset of n (the same for samples and floor).
        var realSubset = n >= reference.Count ? reference : reference.Subset(KernelDistance.Draw(new Random(Settings.FloorSeed), reference.Count, n));
        var pr = PrecisionRecall.Compute(realSubset, features, Settings.NearestK);
        var classes = ClassHistogram.FromLabels(predictions, Data.ClassNames);
        return new QualityReport(Dataset, n, fid, kid.Mean, kid.StandardDeviation, pr.Precision, pr.Recall, classes, ClassifierAccuracy,
                                 reference.Count, kid.Subsets, kid.SubsetSize, pr.K, seed, Floor: null);
    }

    private void CheckShape(long[] shape)
    {
        if (shape.Length != 4 || shape[1] != Channels || shape[2] != ImageSize || shape[3] != ImageSize)
            throw new ArgumentException(
                $"{Dataset} images are [N, {Channels}, {ImageSize}, {ImageSize}]; got [{string.Join(", ", shape)}].");
        if (shape[0] < Settings.MinimumCount)
            throw new ArgumentException(TooFew(shape[0]));
    }

    private string TooFew(long count) => string.Create(CultureInfo.InvariantCulture,
        $"{count} image{(count == 1 ? "" : "s")} cannot be scored: FID and KID need at least 2, precision and recall (k = {Settings.NearestK}) at least {Settings.NearestK + 1}.");

    /// <summary>Disposes the feature net.</summary>
    public void Dispose() => featureNet.Dispose();
}
