// In Ddpm.Core: used by Ddpm.Runtime (behind ImageGrid) and by Ddpm.Onnx, which writes the same grids from ONNX
// Runtime's float arrays.
namespace Ddpm.Imaging;

/// <summary>Lays out images [N, C, H, W] (float32, values in [-1, 1]) as a padded grid: the pixels of ImageGrid.</summary>
internal static class GridLayout
{
    /// <summary>The padding colour, in the images' [-1, 1] scale: white, which stands out from dark backgrounds.</summary>
    public const float PadValue = 1f;

    /// <summary>
    /// Renders <paramref name="values"/> (<paramref name="n"/> images of <paramref name="c"/> x <paramref name="h"/> x
    /// <paramref name="w"/>, row-major) with <paramref name="columns"/> per row, <paramref name="padding"/> white pixels
    /// between images and around the edge, each pixel then blown up to <paramref name="scale"/> x <paramref name="scale"/>.
    /// </summary>
    public static Raster Render(ReadOnlySpan<float> values, int n, int c, int h, int w, int columns = 8, int padding = 2, int scale = 1)
    {
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "columns must be >= 1.");
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "padding must be >= 0.");
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be >= 1.");
        if (n < 1 || c is not (1 or 3) || h < 1 || w < 1)
            throw new ArgumentException($"Expected images shaped [N, C, H, W] with N >= 1 and C = 1 or 3, got [{n}, {c}, {h}, {w}].");
        if (values.Length != (long)n * c * h * w)
            throw new ArgumentException($"Expected {(long)n * c * h * w} values for [{n}, {c}, {h}, {w}], got {values.Length}.", nameof(values));

        int cols = Math.Min(columns, n), rows = (n + cols - 1) / cols;
        int width = cols * (w + padding) + padding, height = rows * (h + padding) + padding;
        var grid = new Raster(width, height, c);
        grid.Pixels.AsSpan().Fill(ToByte(PadValue));
        for (int i = 0; i < n; i++)
        {
            int left = padding + (i % cols) * (w + padding), top = padding + (i / cols) * (h + padding);
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                {
                    int source = ((i * c + ch) * h + y) * w;
                    int target = ((top + y) * width + left) * c + ch;
                    for (int x = 0; x < w; x++)
                        grid.Pixels[target + x * c] = ToByte(values[source + x]);
                }
        }
        return grid.Upscale(scale);
    }

    /// <summary>[-1, 1] to 0..255: -1 is 0, +1 is 255, 0 is 128; clamped; NaN is 0.</summary>
    public static byte ToByte(float v)
    {
        if (float.IsNaN(v) || v <= -1f) return 0;
        if (v >= 1f) return 255;
        return (byte)((v + 1f) * 127.5f + 0.5f);
    }

    /// <summary>Columns of a square-ish grid of <paramref name="count"/> images.</summary>
    public static int Columns(long count) => (int)Math.Max(1, Math.Ceiling(Math.Sqrt(count)));

    /// <summary>
    /// Columns of a grid of images drawn with class <paramref name="labels"/>: one row per class when the labels come in equal
    /// runs of different classes (a draw of every class in turn), else square-ish.
    /// </summary>
    public static int Columns(long count, IReadOnlyList<int>? labels)
    {
        return labels is not null && ClassRowLength(labels) is int run && run > 0 ? run : Columns(count);
    }

    /// <summary>The row length of a grid with one row per class (<paramref name="labels"/> in equal runs of different classes), else 0.</summary>
    public static int ClassRowLength(IReadOnlyList<int> labels) => RunLength(labels) is int run && run > 1 && run < labels.Count ? run : 0;

    /// <summary>The length of the equal runs <paramref name="labels"/> is made of, or 0 when it is not.</summary>
    private static int RunLength(IReadOnlyList<int> labels)
    {
        int run = 1;
        while (run < labels.Count && labels[run] == labels[0]) run++;
        if (labels.Count % run != 0) return 0;
        for (int i = 0; i < labels.Count; i++)
            if (labels[i] != labels[i - i % run] || (i % run == 0 && i > 0 && labels[i] == labels[i - 1])) return 0;
        return run;
    }

    /// <summary>Small images (32 pixels or less) are doubled so a grid is easy to look at.</summary>
    public static int Scale(long size) => size <= 32 ? 2 : 1;
}
