using System.Security.Cryptography;
using Ddpm.Data;

namespace Ddpm.Evaluation;

/// <summary>
/// A labelled data set as sample-quality evaluation needs it: a training split (the feature net learns from it,
/// and the floor draws real images from it), a test split (the reference every score is measured against),
/// the class names, and the folder where the feature net trained on it is cached.
/// </summary>
/// <param name="Name">The name it was asked for, e.g. fashion-mnist or idx:data/mnist.</param>
/// <param name="TrainImages">The training split's images.</param>
/// <param name="TrainLabels">The class of each training image, a label in [0, number of classes).</param>
/// <param name="TestImages">The test split's images, of the training images' shape; square.</param>
/// <param name="TestLabels">The class of each test image.</param>
/// <param name="ClassNames">The class names, entry i naming label i (at least 2).</param>
/// <param name="FlipInvariant">True when a mirrored image is still of its class (clothes, CIFAR-10), so the
/// feature net may train with random horizontal flips; false for digits and unknown data.</param>
/// <param name="CacheFolder">Where <see cref="FeatureNetCache"/> keeps the trained feature net.</param>
public sealed record LabelledDataset(
    string Name,
    ImageSet TrainImages,
    byte[] TrainLabels,
    ImageSet TestImages,
    byte[] TestLabels,
    IReadOnlyList<string> ClassNames,
    bool FlipInvariant,
    string CacheFolder)
{
    /// <summary>Channels per image (1 grayscale, 3 RGB).</summary>
    public int Channels => TestImages.Channels;
    /// <summary>Height and width of the (square) images in pixels.</summary>
    public int ImageSize => TestImages.Height;

    /// <summary>Checks that the splits agree with each other and with the labels; throws <see cref="InvalidDataException"/> naming the problem.</summary>
    public LabelledDataset Validated()
    {
        if (TrainImages.Count != TrainLabels.Length)
            throw new InvalidDataException($"{Name}: {TrainImages.Count} training images but {TrainLabels.Length} labels.");
        if (TestImages.Count != TestLabels.Length)
            throw new InvalidDataException($"{Name}: {TestImages.Count} test images but {TestLabels.Length} labels.");
        if (TrainImages.Channels != TestImages.Channels || TrainImages.Height != TestImages.Height || TrainImages.Width != TestImages.Width)
            throw new InvalidDataException($"{Name}: training images are {Shape(TrainImages)} but test images {Shape(TestImages)}.");
        if (TestImages.Height != TestImages.Width)
            throw new InvalidDataException($"{Name}: images are {Shape(TestImages)}; evaluation needs square images.");
        if (ClassNames.Count < 2)
            throw new InvalidDataException($"{Name}: a classifier needs at least 2 classes, got {ClassNames.Count}.");
        int maxLabel = Math.Max(TrainLabels.Max(), TestLabels.Max());
        if (maxLabel >= ClassNames.Count)
            throw new InvalidDataException($"{Name}: label {maxLabel} found, but the data set has {ClassNames.Count} classes.");
        return this;
    }

    /// <summary>
    /// SHA-256 of both splits (shapes, pixels and labels): the identity a cached feature net is checked against,
    /// so a net trained on other data is never reused.
    /// </summary>
    public string Fingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (images, labels) in new[] { (TrainImages, TrainLabels), (TestImages, TestLabels) })
        {
            hash.AppendData(BitConverter.GetBytes(images.Count));
            hash.AppendData(BitConverter.GetBytes(images.Channels));
            hash.AppendData(BitConverter.GetBytes(images.Height));
            hash.AppendData(BitConverter.GetBytes(images.Width));
            hash.AppendData(images.Pixels);
            hash.AppendData(labels);
        }
        foreach (string name in ClassNames) hash.AppendData(System.Text.Encoding.UTF8.GetBytes(name + "\n"));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static string Shape(ImageSet s) => $"{s.Channels}x{s.Height}x{s.Width}";
}
