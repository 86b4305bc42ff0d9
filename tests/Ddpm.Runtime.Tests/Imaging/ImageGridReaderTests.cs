using Ddpm.Data;
using Ddpm.Imaging;
using Ddpm.Runtime.Tests.Data;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Imaging;

public class ImageGridReaderTests
{
    /// <summary>
    /// n images of channels x tile x tile with random levels 0..254 (never white, so no tile looks like border),
    /// as bytes and as the [-1, 1] floats that ImageGrid maps back to exactly those bytes.
    /// </summary>
    private static (byte[] Bytes, Tensor Images) Known(int n, int channels, int tile, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[n * channels * tile * tile];
        random.NextBytes(bytes);
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Min((int)bytes[i], 254);
        var floats = bytes.Select(b => b / 127.5f - 1f).ToArray();
        return (bytes, tensor(floats, [n, channels, tile, tile]));
    }

    [Theory]
    // n, channels, tile, columns, padding, scale
    [InlineData(20, 1, 4, 8, 2, 1)]   // ddpm's default layout, a last row of 4 images and 4 empty cells
    [InlineData(16, 1, 4, 8, 2, 1)]   // full rows
    [InlineData(7, 1, 4, 3, 1, 2)]    // padding 1, scale 2, last row 1 image and 2 empty cells
    [InlineData(7, 1, 5, 3, 1, 1)]
    [InlineData(6, 3, 5, 4, 0, 1)]    // RGB without padding: the empty cells are white
    [InlineData(5, 3, 6, 2, 3, 3)]    // RGB, padding 3, scale 3
    [InlineData(3, 1, 4, 5, 2, 4)]    // more columns than images: one row
    [InlineData(1, 1, 28, 8, 2, 2)]   // a single Fashion-MNIST-sized image
    [InlineData(9, 3, 8, 4, 8, 1)]    // the widest padding tried
    [InlineData(5, 1, 4, 5, 0, 2)]    // no padding, scale 2
    public void Grid_written_by_image_grid_reads_back_to_the_same_bytes(int n, int channels, int tile, int columns, int padding, int scale)
    {
        using var dir = new TempFolder();
        var (bytes, images) = Known(n, channels, tile, seed: n * 100 + padding * 10 + scale);
        using (images)
        {
            string path = dir.File("grid.png");
            ImageGrid.SavePng(images, path, columns, padding, scale);

            var read = ImageGridReader.Read(path, tile, channels);

            Assert.Equal((n, channels, tile, tile), (read.Count, read.Channels, read.Height, read.Width));
            Assert.Equal(bytes, read.Pixels);
        }
    }

    [Fact]
    public void Rendered_raster_layout_is_found_from_its_border_pixels()
    {
        var (_, images) = Known(7, 1, 4, seed: 1);
        using (images)
        {
            var raster = ImageGrid.Render(images, columns: 3, padding: 2, scale: 2);
            var layout = ImageGridReader.FindLayout(raster.Width, raster.Height, 4, (x, y) => raster.Pixels[y * raster.Width + x] == 255);
            Assert.Equal(new ImageGridReader.Layout(Tile: 4, Padding: 2, Scale: 2, Columns: 3, Rows: 3), layout);
        }
    }

    [Fact]
    public void A_white_image_inside_the_grid_is_kept_only_trailing_white_cells_are_dropped()
    {
        using var dir = new TempFolder();
        var (bytes, images) = Known(5, 1, 4, seed: 2);
        using (images)
        {
            images[1].copy_(ones(1, 4, 4)); // all white, not at the end
            Array.Fill(bytes, (byte)255, 16, 16);
            string path = dir.File("grid.png");
            ImageGrid.SavePng(images, path, columns: 3);

            var read = ImageGridReader.Read(path, 4, 1);

            Assert.Equal(5, read.Count);
            Assert.Equal(bytes, read.Pixels);
        }
    }

    [Fact]
    public void Rgb_grid_read_as_gray_uses_bt601_weights()
    {
        using var dir = new TempFolder();
        // One 4x4 RGB image, every pixel the pixels (r, g, b) = (200, 100, 50): 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2 -> 124.
        using var image = cat([full(1, 1, 4, 4, 200 / 127.5f - 1), full(1, 1, 4, 4, 100 / 127.5f - 1), full(1, 1, 4, 4, 50 / 127.5f - 1)], 1);
        string path = dir.File("rgb.png");
        ImageGrid.SavePng(image, path);

        var read = ImageGridReader.Read(path, 4, channels: 1);

        Assert.Equal(Enumerable.Repeat((byte)124, 16), read.Pixels);
    }

    [Fact]
    public void Image_whose_size_fits_no_grid_is_invalid_data()
    {
        using var dir = new TempFolder();
        string path = dir.File("noise.png");
        var random = new Random(3);
        var pixels = new byte[13 * 7];
        random.NextBytes(pixels);
        new Raster(13, 7, 1, pixels).SavePng(path);

        var e = Assert.Throws<InvalidDataException>(() => ImageGridReader.Read(path, 4, 1));
        Assert.StartsWith($"{path}: a 13x7 image is not a grid of 4x4 tiles", e.Message);
    }

    [Fact]
    public void Grid_geometry_without_white_borders_is_invalid_data()
    {
        using var dir = new TempFolder();
        string path = dir.File("dark.png");
        // 14x14 is two 4x4 tiles with padding 2, but the border is black; no other layout fits 14 pixels.
        new Raster(14, 14, 1).SavePng(path);

        var e = Assert.Throws<InvalidDataException>(() => ImageGridReader.Read(path, 4, 1));
        Assert.StartsWith($"{path}: a 14x14 image is not a grid of 4x4 tiles", e.Message);
    }

    [Fact]
    public void A_file_that_is_not_an_image_is_invalid_data()
    {
        using var dir = new TempFolder();
        string path = dir.File("notes.png");
        File.WriteAllText(path, "not a png");

        var e = Assert.Throws<InvalidDataException>(() => ImageGridReader.Read(path, 4, 1));
        Assert.Equal($"{path}: not an image SkiaSharp can decode.", e.Message);
    }
}
