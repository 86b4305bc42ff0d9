using Ddpm.Imaging;
using Ddpm.Runtime.Tests.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Imaging;

public class ImageGridTests
{
    [Fact]
    public void Gray_grid_maps_minus_one_to_black_plus_one_to_white_and_pads_white()
    {
        using var dir = new TempFolder();
        // Three 2x2 images: all -1, all +1, all 0; two columns, padding 1, scale 2.
        using var images = cat([full(1, 1, 2, 2, -1f), full(1, 1, 2, 2, 1f), zeros(1, 1, 2, 2)]);
        var path = dir.File("grid.png");

        ImageGrid.SavePng(images, path, columns: 2, padding: 1, scale: 2);

        using var bitmap = SKBitmap.Decode(path);
        Assert.Equal((14, 14), (bitmap.Width, bitmap.Height)); // (2 * (2 + 1) + 1) * 2
        Assert.Equal(SKColors.White, bitmap.GetPixel(0, 0));      // padding
        Assert.Equal(SKColors.Black, bitmap.GetPixel(2, 2));      // image 0: top left at (1, 1) * 2
        Assert.Equal(SKColors.Black, bitmap.GetPixel(5, 5));
        Assert.Equal(SKColors.White, bitmap.GetPixel(6, 2));      // padding between image 0 and 1
        Assert.Equal(SKColors.White, bitmap.GetPixel(8, 2));      // image 1
        Assert.Equal(new SKColor(128, 128, 128), bitmap.GetPixel(2, 8)); // image 2, second row
        Assert.Equal(SKColors.White, bitmap.GetPixel(9, 9));      // the empty fourth cell is padding
    }

    [Fact]
    public void Rgb_grid_keeps_channels_and_clamps()
    {
        using var dir = new TempFolder();
        // One 1x3 image: pixel 0 = (+1, -1, 0), pixel 1 = (5, -3, NaN), pixel 2 = (0.5, -0.5, 0.999).
        using var image = tensor(new float[] { 1, 5, 0.5f, -1, -3, -0.5f, 0, float.NaN, 0.999f }, [1, 3, 1, 3]);
        var path = dir.File("rgb.png");

        ImageGrid.SavePng(image, path, padding: 0);

        using var bitmap = SKBitmap.Decode(path);
        Assert.Equal((3, 1), (bitmap.Width, bitmap.Height));
        Assert.Equal(new SKColor(255, 0, 128), bitmap.GetPixel(0, 0));
        Assert.Equal(new SKColor(255, 0, 0), bitmap.GetPixel(1, 0));
        Assert.Equal(new SKColor(191, 64, 255), bitmap.GetPixel(2, 0)); // round(191.25), round(63.75), round(254.87)
    }

    [Fact]
    public void Grid_of_eight_columns_has_torchvision_layout()
    {
        using var images = rand(20, 1, 28, 28) * 2 - 1;
        var grid = ImageGrid.Render(images, scale: 2);
        Assert.Equal((8 * 30 + 2) * 2, grid.Width);
        Assert.Equal((3 * 30 + 2) * 2, grid.Height);
        Assert.Equal(1, grid.Channels);
    }

    [Fact]
    public void Pixel_values_land_where_expected()
    {
        // Image 1 (second column) has one bright pixel at (y = 3, x = 5).
        using var images = full(2, 1, 8, 8, -1f);
        images[1, 0, 3, 5] = tensor(1f);
        var grid = ImageGrid.Render(images, padding: 2);
        int x = 2 + 8 + 2 + 5, y = 2 + 3;
        Assert.Equal(255, grid.Pixels[y * grid.Width + x]);
        Assert.Equal(0, grid.Pixels[y * grid.Width + x + 1]);
    }

    [Fact]
    public void Wrong_shape_is_refused()
    {
        using var images = zeros(2, 2, 4, 4);
        Assert.Throws<ArgumentException>(() => ImageGrid.Render(images));
    }
}
