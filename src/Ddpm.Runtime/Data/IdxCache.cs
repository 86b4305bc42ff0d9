using System.Security.Cryptography;

namespace Ddpm.Data;

/// <summary>
/// The cache folder shared by the IDX data sets fetched from a registry (Fashion-MNIST, MNIST): the four IDX files
/// (<see cref="FashionMnist.Files"/>, plain) and a <c>SHA256SUMS</c> written last, verified on every load.
/// </summary>
internal static class IdxCache
{
    /// <summary><c>&lt;root&gt;/&lt;name&gt;</c>, where root is <paramref name="cacheRoot"/>, else <c>$DDPM_DATA</c>, else <c>~/.cache/ddpm</c>.</summary>
    public static string Folder(string? cacheRoot, string name)
    {
        var root = cacheRoot;
        if (string.IsNullOrEmpty(root)) root = Environment.GetEnvironmentVariable(FashionMnist.DataEnvironmentVariable);
        if (string.IsNullOrEmpty(root))
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ddpm");
        return Path.Combine(Path.GetFullPath(root), name);
    }

    /// <summary>
    /// Checks every IDX file of the cache against the SHA-256 recorded in its <c>SHA256SUMS</c>;
    /// throws a <see cref="InvalidDataException"/> naming the first file that is missing or differs.
    /// </summary>
    public static void Verify(string folder)
    {
        var sumsPath = Path.Combine(folder, FashionMnist.SumsFile);
        var recorded = ReadSums(sumsPath);
        string fix = $"Delete the folder {folder} and run again to rebuild the cache.";
        foreach (var name in FashionMnist.Files)
        {
            var path = Path.Combine(folder, name);
            if (!recorded.TryGetValue(name, out var expected))
                throw DataFormat.Error(sumsPath, $"has no entry for {name}. {fix}");
            if (!File.Exists(path))
                throw DataFormat.Error(path, $"is missing from the cache. {fix}");
            var actual = Sha256(path);
            if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
                throw DataFormat.Error(path,
                    $"SHA-256 is {actual} but {FashionMnist.SumsFile} recorded {expected} when the cache was written: the file was changed or damaged. {fix}");
        }
    }

    /// <summary>
    /// Writes the four IDX files and their <c>SHA256SUMS</c> into <paramref name="folder"/>. Each file is written
    /// under a temporary name and renamed into place, <c>SHA256SUMS</c> last, so a crash leaves no file that a
    /// later load would trust. When <paramref name="expectedSha256"/> is given, a file whose hash differs is not put in place.
    /// </summary>
    public static void Write(string folder, FashionMnistSplit data, IReadOnlyDictionary<string, string>? expectedSha256)
    {
        if (data.TrainImages.Count != data.TrainLabels.Length || data.TestImages.Count != data.TestLabels.Length)
            throw new ArgumentException("Image and label counts differ.", nameof(data));
        Directory.CreateDirectory(folder);
        File.Delete(Path.Combine(folder, FashionMnist.SumsFile)); // from here until the end the cache is incomplete
        var sums = new List<string>();
        void Put(string name, Action<string> write)
        {
            var temp = Path.Combine(folder, $"{name}.partial-{Guid.NewGuid():N}");
            try
            {
                write(temp);
                var sha256 = Sha256(temp);
                if (expectedSha256 is not null && expectedSha256[name] != sha256)
                    throw DataFormat.Error(Path.Combine(folder, name),
                        $"the converted file has SHA-256 {sha256}, not the {expectedSha256[name]} that this version of Ddpm makes from the same source; not caching it.");
                sums.Add($"{sha256}  {name}");
                File.Move(temp, Path.Combine(folder, name), overwrite: true);
            }
            finally { File.Delete(temp); }
        }
        Put(FashionMnist.TrainImagesFile, p => Idx.WriteImages(p, data.TrainImages));
        Put(FashionMnist.TrainLabelsFile, p => Idx.WriteLabels(p, data.TrainLabels));
        Put(FashionMnist.TestImagesFile, p => Idx.WriteImages(p, data.TestImages));
        Put(FashionMnist.TestLabelsFile, p => Idx.WriteLabels(p, data.TestLabels));
        var lines = string.Join("\n", sums) + "\n";
        var sumsTemp = Path.Combine(folder, $"{FashionMnist.SumsFile}.partial-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllText(sumsTemp, lines);
            File.Move(sumsTemp, Path.Combine(folder, FashionMnist.SumsFile), overwrite: true);
        }
        finally { File.Delete(sumsTemp); }
    }

    /// <summary>Reads and checks the four IDX files of a folder (plain or .gz); <paramref name="dataset"/> names the data set in errors.</summary>
    public static FashionMnistSplit ReadIdxFiles(string folder, string dataset)
    {
        string Find(string name)
        {
            var plain = Path.Combine(folder, name);
            return File.Exists(plain) ? plain : plain + ".gz";
        }
        var (trainImages, trainLabels) = Idx.Read(Find(FashionMnist.TrainImagesFile), Find(FashionMnist.TrainLabelsFile));
        var (testImages, testLabels) = Idx.Read(Find(FashionMnist.TestImagesFile), Find(FashionMnist.TestLabelsFile));
        foreach (var (images, name) in new[] { (trainImages, FashionMnist.TrainImagesFile), (testImages, FashionMnist.TestImagesFile) })
            if (images.Height != FashionMnist.Side || images.Width != FashionMnist.Side)
                throw DataFormat.Error(Find(name),
                    $"holds {images.Height}x{images.Width} images; {dataset} images are {FashionMnist.Side}x{FashionMnist.Side}.");
        return new FashionMnistSplit(trainImages, trainLabels, testImages, testLabels);
    }

    /// <summary>IDX files copied into the cache folder by hand, without a SHA256SUMS yet: checked, then adopted.</summary>
    public static bool TryAdoptCopiedFiles(string folder, string dataset, Action<string>? log, List<string> failures)
    {
        bool present = FashionMnist.Files.All(f => File.Exists(Path.Combine(folder, f)) || File.Exists(Path.Combine(folder, f + ".gz")));
        if (!present) return false;
        try
        {
            log?.Invoke($"{dataset}: found IDX files in {folder} without {FashionMnist.SumsFile}; checking them.");
            var data = ReadIdxFiles(folder, dataset);
            Write(folder, data, expectedSha256: null);
            log?.Invoke($"{dataset}: adopted {data.TrainImages.Count} training and {data.TestImages.Count} test images.");
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            failures.Add($"files in {folder}: {e.Message}");
            log?.Invoke($"{dataset}: the files in {folder} are unusable: {e.Message}");
            return false;
        }
    }

    private static Dictionary<string, string> ReadSums(string path)
    {
        var sums = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0) continue;
            int space = line.IndexOf(' ');
            if (space != 64)
                throw DataFormat.Error(path, $"has a line that is not \"<sha256>  <file>\": \"{line}\". Delete the folder {Path.GetDirectoryName(path)} and run again to rebuild the cache.");
            sums[line[(space + 1)..].TrimStart(' ', '*')] = line[..space];
        }
        return sums;
    }

    public static string Sha256(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
