using Ddpm.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Evaluation;

/// <summary>
/// The one road from pixels to the feature net: every image, sample or real, becomes its 8-bit levels 0..255
/// first and then the float [-1, 1] the net reads, by the same tensor operations. A sample is scored as the
/// PNG it would be saved as (clean-fid's lesson: FID moves when real and generated images are quantised or
/// resized differently), and a real image's bytes give exactly the values its quantised self would.
/// </summary>
public static class ImageLevels
{
    /// <summary>
    /// [-1, 1] to levels: floor((v + 1) * 127.5 + 0.5) clamped to [0, 255] as float32, the rounding of
    /// <see cref="Imaging.ImageGrid.ToByte"/>; NaN and -inf become 0, +inf 255.
    /// </summary>
    public static Tensor ToLevels(Tensor images)
    {
        using var scope = NewDisposeScope();
        return images.to(ScalarType.Float32).nan_to_num(-1.0, 1.0, -1.0)
            .add(1.0).mul_(127.5).add_(0.5).floor_().clamp_(0, 255)
            .MoveToOuterDisposeScope();
    }

    /// <summary>Levels (0..255, float32) to the net's input scale: level / 127.5 - 1.</summary>
    public static Tensor FromLevels(Tensor levels)
    {
        using var scope = NewDisposeScope();
        return levels.to(ScalarType.Float32).div(127.5).sub_(1.0).MoveToOuterDisposeScope();
    }

    /// <summary>[-1, 1] images snapped to the 256 levels a PNG can hold, still in [-1, 1].</summary>
    public static Tensor Quantize(Tensor images)
    {
        using var scope = NewDisposeScope();
        return FromLevels(ToLevels(images)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The images at <paramref name="indices"/> of an 8-bit set as float [-1, 1] [n, C, H, W]; <paramref name="flip"/>
    /// (same length) mirrors chosen images left to right.
    /// </summary>
    public static Tensor FromBytes(ImageSet images, ReadOnlySpan<int> indices, ReadOnlySpan<bool> flip = default)
    {
        if (!flip.IsEmpty && flip.Length != indices.Length)
            throw new ArgumentException($"{flip.Length} flip flags for {indices.Length} images.", nameof(flip));
        int size = images.ImageBytes, w = images.Width;
        var bytes = new byte[indices.Length * size];
        for (int i = 0; i < indices.Length; i++)
        {
            var source = images.Image(indices[i]);
            var target = bytes.AsSpan(i * size, size);
            if (flip.IsEmpty || !flip[i])
            {
                source.CopyTo(target);
                continue;
            }
            for (int row = 0; row < size; row += w)
                for (int x = 0; x < w; x++)
                    target[row + x] = source[row + w - 1 - x];
        }
        using var scope = NewDisposeScope();
        var levels = tensor(bytes, [indices.Length, images.Channels, images.Height, images.Width]);
        return FromLevels(levels).MoveToOuterDisposeScope();
    }

    /// <summary>An 8-bit image set from [-1, 1] images [N, C, H, W] (quantised as <see cref="ToLevels"/>).</summary>
    public static ImageSet ToImageSet(Tensor images)
    {
        if (images.dim() != 4)
            throw new ArgumentException($"Expected images [N, C, H, W], got [{string.Join(", ", images.shape)}].", nameof(images));
        using var scope = NewDisposeScope();
        var levels = ToLevels(images).to(ScalarType.Byte).contiguous().cpu();
        var bytes = levels.data<byte>().ToArray();
        return new ImageSet(bytes, (int)images.shape[0], (int)images.shape[1], (int)images.shape[2], (int)images.shape[3]);
    }
}
