using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Imaging;

/// <summary>
/// A batch of images [N, C, H, W] (C = 1 or 3, values in [-1, 1]) laid out as a grid, like torchvision's
/// <c>make_grid</c>: <c>columns</c> images per row, <c>padding</c> pixels between images and around the
/// edge, then every pixel blown up into a <c>scale</c> x <c>scale</c> block (so 28-pixel images are visible).
/// Values map to bytes as round((v + 1) / 2 * 255), clamped; NaN becomes black.
/// </summary>
public static class ImageGrid
{
    /// <summary>The padding colour, in the images' [-1, 1] scale: white, which stands out from dark backgrounds.</summary>
    public const float PadValue = GridLayout.PadValue;

    /// <summary>Writes the grid as a PNG (gray for one channel, RGB for three).</summary>
    public static void SavePng(Tensor images, string path, int columns = 8, int padding = 2, int scale = 1)
        => Render(images, columns, padding, scale).SavePng(path);

    /// <summary>Renders the grid into memory. A [C, H, W] tensor is taken as one image.</summary>
    public static Raster Render(Tensor images, int columns = 8, int padding = 2, int scale = 1)
    {
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "columns must be >= 1.");
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "padding must be >= 0.");
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be >= 1.");
        long[] shape;
        float[] values;
        using (var scope = torch.NewDisposeScope())
        {
            var t = images.detach();
            if (t.dim() == 3) t = t.unsqueeze(0);
            shape = t.shape;
            if (shape.Length != 4 || shape[0] < 1 || shape[1] is not (1 or 3))
                throw new ArgumentException($"Expected images shaped [N, C, H, W] with C = 1 or 3, got [{string.Join(", ", images.shape)}].", nameof(images));
            values = t.cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        }

        return GridLayout.Render(values, (int)shape[0], (int)shape[1], (int)shape[2], (int)shape[3], columns, padding, scale);
    }

    /// <summary>[-1, 1] to 0..255: -1 is 0, +1 is 255, 0 is 128; clamped; NaN is 0.</summary>
    public static byte ToByte(float v) => GridLayout.ToByte(v);
}
