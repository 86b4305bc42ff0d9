using System.Buffers.Binary;
using Ddpm.Data;

namespace Ddpm.Runtime.Tests.Data;

public class IdxTests
{
    private static ImageSet Pattern(int count, int height, int width)
    {
        var pixels = new byte[count * height * width];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 37 % 256);
        return new ImageSet(pixels, count, 1, height, width);
    }

    [Theory]
    [InlineData("images-idx3-ubyte")]
    [InlineData("images-idx3-ubyte.gz")]
    public void Images_and_labels_round_trip(string name)
    {
        using var dir = new TempFolder();
        var images = Pattern(count: 5, height: 4, width: 3);
        byte[] labels = [9, 0, 3, 3, 7];
        Idx.WriteImages(dir.File(name), images);
        Idx.WriteLabels(dir.File("labels" + Path.GetExtension(name)), labels);

        var (read, readLabels) = Idx.Read(dir.File(name), dir.File("labels" + Path.GetExtension(name)));

        Assert.Equal((5, 1, 4, 3), (read.Count, read.Channels, read.Height, read.Width));
        Assert.Equal(images.Pixels, read.Pixels);
        Assert.Equal(labels, readLabels);
        Assert.Equal(name.EndsWith(".gz"), Idx.IsGzip(dir.File(name)));
    }

    [Fact]
    public void Plain_file_layout_is_the_big_endian_idx_header_then_the_bytes()
    {
        using var dir = new TempFolder();
        Idx.WriteImages(dir.File("x"), Pattern(2, 28, 28));
        var bytes = File.ReadAllBytes(dir.File("x"));
        Assert.Equal(16 + 2 * 28 * 28, bytes.Length);
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28 }, bytes[..16]);
        Assert.Equal((byte)(37 % 256), bytes[17]);
    }

    [Fact]
    public void Gzip_is_detected_by_magic_bytes_not_by_name()
    {
        using var dir = new TempFolder();
        Idx.WriteLabels(dir.File("labels.gz"), [1, 2, 3]);
        File.Move(dir.File("labels.gz"), dir.File("train-labels-idx1-ubyte"));
        Assert.Equal(new byte[] { 1, 2, 3 }, Idx.ReadLabels(dir.File("train-labels-idx1-ubyte")));
    }

    [Fact]
    public void Truncated_file_error_names_the_file_and_the_sizes()
    {
        using var dir = new TempFolder();
        var path = dir.File("train-images-idx3-ubyte");
        Idx.WriteImages(path, Pattern(60, 28, 28));
        using (var file = File.OpenWrite(path)) file.SetLength(1000);

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));

        Assert.Equal($"{path}: expected 47056 bytes for 60 images of 28x28, found 1000.", e.Message);
    }

    [Fact]
    public void Truncated_gzip_file_error_names_the_file()
    {
        using var dir = new TempFolder();
        var path = dir.File("t10k-images-idx3-ubyte.gz");
        Idx.WriteImages(path, Pattern(60, 28, 28));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));

        Assert.StartsWith(path + ": ", e.Message);
    }

    [Fact]
    public void Extra_bytes_after_the_data_are_an_error()
    {
        using var dir = new TempFolder();
        var path = dir.File("labels");
        Idx.WriteLabels(path, [1, 2, 3]);
        File.AppendAllText(path, "junk");

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(path));

        Assert.Equal($"{path}: expected 11 bytes for 3 labels, found 15.", e.Message);
    }

    [Fact]
    public void Bad_magic_is_reported_with_a_hint()
    {
        using var dir = new TempFolder();
        var path = dir.File("train-images-idx3-ubyte");
        Idx.WriteLabels(path, [1, 2, 3]);

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));

        Assert.Equal($"{path}: bad magic number 0x00000801 (an IDX label file, not images); an IDX image file starts with 0x00000803.", e.Message);
    }

    [Fact]
    public void Html_instead_of_idx_is_bad_magic()
    {
        using var dir = new TempFolder();
        var path = dir.File("train-labels-idx1-ubyte");
        File.WriteAllText(path, "<html><body>Not found</body></html>");

        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(path));

        Assert.Contains("bad magic number 0x3c68746d", e.Message);
    }

    [Theory]
    [InlineData(false, 1000, "expected 1000000016 bytes for 1000 images of 1000x1000, found 16.")]
    [InlineData(true, 1000, "the header describes 1000 images of 1000x1000 (1000000016 bytes), more than a")]
    [InlineData(false, 1_000_000, "the header describes 1000000 images of 1000x1000, more than one array can hold; the header is corrupt.")]
    public void Absurd_header_is_rejected_before_allocating(bool gzip, int count, string problem)
    {
        using var dir = new TempFolder();
        var path = dir.File(gzip ? "huge.gz" : "huge");
        var header = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, Idx.ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), 1000);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), 1000);
        using (var file = File.Create(path))
        using (Stream s = gzip ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest) : file)
            s.Write(header);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.True(allocated < 10_000_000, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Zero_dimension_is_rejected()
    {
        using var dir = new TempFolder();
        var path = dir.File("empty");
        Idx.WriteLabels(path, []);
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(path));
        Assert.Contains("dimension 0 of the header is 0", e.Message);
    }

    [Fact]
    public void Image_and_label_counts_must_agree()
    {
        using var dir = new TempFolder();
        Idx.WriteImages(dir.File("i"), Pattern(3, 2, 2));
        Idx.WriteLabels(dir.File("l"), [1, 2]);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(dir.File("i"), dir.File("l")));
        Assert.Equal($"{dir.File("l")}: holds 2 labels but i holds 3 images.", e.Message);
    }

    [Fact]
    public void Writing_rgb_images_is_refused()
    {
        using var dir = new TempFolder();
        var rgb = new ImageSet(new byte[12], 1, 3, 2, 2);
        Assert.Throws<ArgumentException>(() => Idx.WriteImages(dir.File("x"), rgb));
    }
}
