using Ddpm.Data;
using SkiaSharp;

namespace Ddpm.Imaging;

/// <summary>
/// Cuts a sample grid back into its images: the inverse of <see cref="ImageGrid.Render"/> (tiles of a known size,
/// a white border of <c>padding</c> pixels between and around them, every pixel blown up <c>scale</c> times), so a
/// grid written by ddpm or by torchvision's <c>make_grid</c> can be scored. The layout is found from the PNG's size
/// and checked against its border pixels; the empty cells that end a last row are dropped.
/// </summary>
public static class ImageGridReader
{
    /// <summary>The layout of a grid: tile side, padding and scale in source pixels, columns and rows.</summary>
    /// <param name="Tile">Side of one image, in source pixels (before scaling).</param>
    /// <param name="Padding">Border between and around the images, in source pixels.</param>
    /// <param name="Scale">How many PNG pixels each source pixel was blown up to, per side.</param>
    /// <param name="Columns">Images per row.</param>
    /// <param name="Rows">Rows of images, the last one possibly partly empty.</param>
    public sealed record Layout(int Tile, int Padding, int Scale, int Columns, int Rows);

    /// <summary>Reads the tiles of <paramref name="path"/> as <paramref name="channels"/> x tile x tile images.</summary>
    public static ImageSet Read(string path, int tile, int channels)
    {
        // The size from the header first: a grid that claims 20000 x 20000 pixels is refused before it is decoded.
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode.");
        ImageLimits.Check(path, codec.Info.Width, codec.Info.Height);
        using var decoded = SKBitmap.Decode(codec) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode.");
        using var rgba = decoded.Copy(SKColorType.Rgba8888) ?? throw new InvalidDataException($"{path}: cannot convert its pixels to RGBA.");
        int width = rgba.Width, height = rgba.Height;
        byte[] pixels = rgba.Bytes; // RGBA rows, no padding for Rgba8888
        var layout = FindLayout(width, height, tile, (x, y) => IsBorder(pixels, width, x, y),
                                (x, y) => BitConverter.ToInt32(pixels, (y * width + x) * 4))
            ?? throw new InvalidDataException(
                $"{path}: a {width}x{height} image is not a grid of {tile}x{tile} tiles (tried padding 0-8 and scale 1-8 with white borders). " +
                "Pass a folder of single images instead.");
        return Cut(pixels, width, layout, channels);
    }

    /// <summary>
    /// The first layout whose geometry fits <paramref name="width"/> x <paramref name="height"/> and whose border pixels
    /// are all white. Padded layouts are tried first, padding 2 (ddpm's and torchvision's default) before the others,
    /// each from scale 1 up: their white borders are evidence. Padding 0 comes last, because any size that is a
    /// multiple of the tile fits it: from the largest scale down, a scale above 1 only when every scale x scale block
    /// is one colour (<paramref name="colour"/>; without it, scale 1 only), so a blown-up grid is not read as more,
    /// smaller tiles. (A padding-0 grid of flat images therefore reads as the largest scale that fits.)
    /// </summary>
    public static Layout? FindLayout(int width, int height, int tile, Func<int, int, bool> isBorder, Func<int, int, int>? colour = null)
    {
        foreach (int padding in new[] { 2, 1, 3, 4, 5, 6, 7, 8 })
            for (int scale = 1; scale <= 8; scale++)
                if (Fit(width, height, tile, padding, scale) is { } layout && BordersAreWhite(layout, isBorder))
                    return layout;
        for (int scale = 8; scale >= 1; scale--)
            if (Fit(width, height, tile, 0, scale) is { } layout &&
                (scale == 1 || colour is not null && BlocksAreUniform(width, height, scale, colour)))
                return layout;
        return null;
    }

    /// <summary>The layout of tiles with this padding and scale when the size fits it exactly, else null.</summary>
    private static Layout? Fit(int width, int height, int tile, int padding, int scale)
    {
        if (width % scale != 0 || height % scale != 0) return null;
        int w = width / scale - padding, h = height / scale - padding, cell = tile + padding;
        if (w < cell || h < cell || w % cell != 0 || h % cell != 0) return null;
        return new Layout(tile, padding, scale, w / cell, h / cell);
    }

    private static bool BlocksAreUniform(int width, int height, int scale, Func<int, int, int> colour)
    {
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                if (colour(x, y) != colour(x - x % scale, y - y % scale)) return false;
        return true;
    }

    private static bool BordersAreWhite(Layout layout, Func<int, int, bool> isBorder)
    {
        if (layout.Padding == 0) return true;
        int cell = layout.Tile + layout.Padding;
        int w = layout.Columns * cell + layout.Padding, h = layout.Rows * cell + layout.Padding;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                bool border = x % cell < layout.Padding || y % cell < layout.Padding;
                if (border && !isBorder(x * layout.Scale, y * layout.Scale)) return false;
            }
        return true;
    }

    private static bool IsBorder(byte[] rgba, int width, int x, int y)
    {
        int i = (y * width + x) * 4;
        return rgba[i] == 255 && rgba[i + 1] == 255 && rgba[i + 2] == 255;
    }

    private static ImageSet Cut(byte[] rgba, int width, Layout layout, int channels)
    {
        int tile = layout.Tile, cell = tile + layout.Padding, bytes = channels * tile * tile;
        var images = new List<byte[]>();
        for (int row = 0; row < layout.Rows; row++)
            for (int column = 0; column < layout.Columns; column++)
            {
                var image = new byte[bytes];
                bool white = true;
                for (int y = 0; y < tile; y++)
                    for (int x = 0; x < tile; x++)
                    {
                        int sx = (layout.Padding + column * cell + x) * layout.Scale, sy = (layout.Padding + row * cell + y) * layout.Scale;
                        int i = (sy * width + sx) * 4;
                        byte r = rgba[i], g = rgba[i + 1], b = rgba[i + 2];
                        white &= r == 255 && g == 255 && b == 255;
                        if (channels == 1)
                            image[y * tile + x] = (byte)Math.Round(0.299 * r + 0.587 * g + 0.114 * b); // BT.601, as ImageFolder
                        else
                        {
                            image[(0 * tile + y) * tile + x] = r;
                            image[(1 * tile + y) * tile + x] = g;
                            image[(2 * tile + y) * tile + x] = b;
                        }
                    }
                images.Add(white && row == layout.Rows - 1 ? null! : image);
            }
        // Only the empty cells at the end of the last row are padding; an all-white image elsewhere is a sample.
        while (images.Count > 0 && images[^1] is null) images.RemoveAt(images.Count - 1);
        var data = images.Select(i => i ?? Enumerable.Repeat((byte)255, bytes).ToArray()).SelectMany(i => i).ToArray();
        return new ImageSet(data, images.Count, channels, tile, tile);
    }
}
