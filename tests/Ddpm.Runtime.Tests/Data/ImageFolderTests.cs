using Ddpm.Data;
using SkiaSharp;

namespace Ddpm.Runtime.Tests.Data;

public class ImageFolderTests
{
    private static void Save(string path, int width, int height, Func<int, int, SKColor> colour,
        SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, colour(x, y));
        using var data = bitmap.Encode(format, 95);
        File.WriteAllBytes(path, data.ToArray());
    }

    private static void AssertAll(ReadOnlySpan<byte> plane, byte expected, string what)
    {
        for (int i = 0; i < plane.Length; i++)
            Assert.True(plane[i] == expected, $"{what}[{i}] = {plane[i]}, expected {expected}");
    }

    [Fact]
    public void Wide_red_image_becomes_an_all_red_square()
    {
        using var dir = new TempFolder();
        Save(dir.File("red.png"), 40, 20, (_, _) => SKColors.Red);

        var set = ImageFolder.Load(dir.Path, size: 16);

        Assert.Equal((1, 3, 16, 16), (set.Count, set.Channels, set.Height, set.Width));
        var image = set.Image(0);
        AssertAll(image[..256], 255, "R");
        AssertAll(image[256..512], 0, "G");
        AssertAll(image[512..], 0, "B");
    }

    [Fact]
    public void Grayscale_is_bt601_luminance()
    {
        using var dir = new TempFolder();
        Save(dir.File("red.png"), 40, 20, (_, _) => SKColors.Red);
        Save(dir.File("teal.png"), 20, 20, (_, _) => new SKColor(0, 128, 128));

        var set = ImageFolder.Load(dir.Path, size: 8, channels: 1);

        Assert.Equal((2, 1, 8, 8), (set.Count, set.Channels, set.Height, set.Width));
        AssertAll(set.Image(0), 76, "red");   // round(0.299 * 255) = 76 ("red.png" sorts first)
        AssertAll(set.Image(1), 90, "teal");  // round(0.587 * 128 + 0.114 * 128) = round(89.7) = 90
    }

    [Fact]
    public void Centre_crop_keeps_the_middle_of_the_longer_side()
    {
        using var dir = new TempFolder();
        // 30x10: red | green | blue thirds. The centre 10x10 square is exactly the green third.
        Save(dir.File("thirds.png"), 30, 10, (x, _) => x < 10 ? SKColors.Red : x < 20 ? SKColors.Lime : SKColors.Blue);

        var image = ImageFolder.Load(dir.Path, size: 10).Image(0);

        AssertAll(image[..100], 0, "R");
        AssertAll(image[100..200], 255, "G");
        AssertAll(image[200..], 0, "B");
    }

    [Theory]
    [InlineData(64, 8)]   // a whole factor
    [InlineData(300, 28)] // not one: Catmull-Rom sampling alone gave 0..255 here
    public void Shrinking_averages_instead_of_aliasing(int side, int size)
    {
        using var dir = new TempFolder();
        Save(dir.File("checker.png"), side, side, (x, y) => (x + y) % 2 == 0 ? SKColors.White : SKColors.Black);

        var image = ImageFolder.Load(dir.Path, size: size, channels: 1).Image(0);

        foreach (var v in image.ToArray()) Assert.InRange(v, 120, 136); // a 1-pixel checkerboard is mid-gray when shrunk
    }

    [Fact]
    public void A_ramp_shrinks_to_the_ramp_of_its_centre_square()
    {
        using var dir = new TempFolder();
        // 200x100, gray = x * 255 / 199: the centre square is x = 50..149, so output pixel i (of 20) covers x = 50 + 5i .. 54 + 5i.
        Save(dir.File("ramp.png"), 200, 100, (x, _) => { byte v = (byte)Math.Round(x * 255 / 199.0); return new SKColor(v, v, v); });

        var image = ImageFolder.Load(dir.Path, size: 20, channels: 1).Image(0);

        for (int y = 0; y < 20; y++)
            for (int i = 0; i < 20; i++)
            {
                double expected = (52 + 5 * i) * 255 / 199.0;
                Assert.True(Math.Abs(image[y * 20 + i] - expected) <= 2, $"pixel ({i}, {y}) = {image[y * 20 + i]}, expected {expected:F1}");
            }
    }

    [Fact]
    public void Files_are_found_recursively_in_sorted_order_skipping_hidden_and_other_files()
    {
        using var dir = new TempFolder();
        Save(dir.File("b.png"), 4, 4, (_, _) => SKColors.Blue);
        Save(dir.File("a.jpg"), 4, 4, (_, _) => SKColors.White, SKEncodedImageFormat.Jpeg);
        Save(Path.Combine(dir.Path, "sub", "c.PNG"), 4, 4, (_, _) => SKColors.Red);
        Save(Path.Combine(dir.Path, ".hidden", "d.png"), 4, 4, (_, _) => SKColors.Lime);
        File.WriteAllText(dir.File("notes.txt"), "not an image");
        File.WriteAllText(dir.File("._b.png"), "AppleDouble junk");

        var files = ImageFolder.FindImages(dir.Path).Select(f => Path.GetRelativePath(dir.Path, f).Replace('\\', '/'));
        var set = ImageFolder.Load(dir.Path, size: 4);

        Assert.Equal(["a.jpg", "b.png", "sub/c.PNG"], files);
        Assert.Equal(3, set.Count);
        Assert.InRange(set.Image(0)[0], 250, 255);   // JPEG white, red channel
        Assert.Equal(255, set.Image(1)[32]);          // blue plane of b.png
        Assert.Equal(255, set.Image(2)[0]);           // red plane of sub/c.PNG
    }

    [Fact]
    public void Undecodable_file_error_names_it()
    {
        using var dir = new TempFolder();
        Save(dir.File("good.png"), 4, 4, (_, _) => SKColors.Red);
        File.WriteAllText(dir.File("broken.png"), "this is not a PNG");

        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path, size: 4));

        Assert.Equal($"{dir.File("broken.png")}: is not a decodable PNG or JPEG image.", e.Message);
    }

    [Fact]
    public void Truncated_png_error_names_it()
    {
        using var dir = new TempFolder();
        Save(dir.File("cut.png"), 64, 64, (x, y) => new SKColor((byte)(x * 4), (byte)(y * 4), (byte)(x ^ y)));
        var bytes = File.ReadAllBytes(dir.File("cut.png"));
        File.WriteAllBytes(dir.File("cut.png"), bytes[..(bytes.Length / 2)]);

        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path, size: 4));

        Assert.StartsWith(dir.File("cut.png") + ": ", e.Message);
    }

    [Fact]
    public void An_image_whose_header_claims_20000x20000_is_refused_before_decoding()
    {
        using var dir = new TempFolder();
        Save(dir.File("huge.png"), 4, 4, (_, _) => SKColors.Red);
        var bytes = File.ReadAllBytes(dir.File("huge.png"));
        // IHDR: length (8..11), "IHDR" (12..15), width (16..19), height (20..23), ..., CRC of type and data (29..32).
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(16), 20000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(20), 20000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(29), Crc32(bytes.AsSpan(12, 17)));
        File.WriteAllBytes(dir.File("huge.png"), bytes);

        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path, size: 4));

        Assert.Equal($"{dir.File("huge.png")}: is 20000x20000 pixels, more than the {ImageFolder.MaxPixels:N0} (4096 x 4096) that ddpm decodes; shrink it first.", e.Message);
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    [Fact]
    public void Empty_folder_is_a_clear_error()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("readme.txt"), "no images here");
        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path, size: 4));
        Assert.Equal($"{dir.Path}: holds no images: looked for *.png, *.jpg and *.jpeg in it and in its subfolders.", e.Message);
    }

    [Fact]
    public void Missing_folder_is_a_clear_error()
    {
        using var dir = new TempFolder();
        var e = Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Load(dir.File("nope"), size: 4));
        Assert.Contains(dir.File("nope"), e.Message);
    }
}
