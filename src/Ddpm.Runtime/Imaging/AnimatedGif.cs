using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing.Processors.Quantization;
using static TorchSharp.torch;

namespace Ddpm.Imaging;

/// <summary>
/// Looping GIF animations such as a denoising sequence, encoded by ImageSharp (which only ever encodes our own
/// frames here, never decodes a file). Each frame gets its own palette from ImageSharp's octree quantizer
/// without dithering (so still regions do not flicker): exact for a frame of at most 255 colours, which
/// leaves a gray frame of all 256 levels within one level, else the nearest of 255 chosen colours.
/// </summary>
public static class AnimatedGif
{
    /// <summary>
    /// Writes a whole animation: every frame for <paramref name="frameDelayMs"/>, the last one for <paramref name="lastFrameDelayMs"/>
    /// (GIF counts hundredths of a second; at least 20 ms). Every frame must have the first one's size and channel count.
    /// </summary>
    /// <param name="path">The .gif file to write; its folder is created if needed.</param>
    /// <param name="frames">The frames in order (at least one).</param>
    /// <param name="frameDelayMs">How long each frame but the last is shown, in milliseconds (rounded to 10 ms).</param>
    /// <param name="lastFrameDelayMs">How long the last frame is shown, in milliseconds.</param>
    /// <param name="loop">Repeat forever or play once.</param>
    public static void Save(string path, IEnumerable<Raster> frames, int frameDelayMs = 100, int lastFrameDelayMs = 2000, bool loop = true)
    {
        var list = frames.ToList();
        if (list.Count == 0) throw new ArgumentException("An animation needs at least one frame.", nameof(frames));
        var (width, height, channels) = (list[0].Width, list[0].Height, list[0].Channels);
        for (int i = 1; i < list.Count; i++)
            if (list[i].Width != width || list[i].Height != height || list[i].Channels != channels)
                throw new ArgumentException($"Frame {i} is {list[i].Width}x{list[i].Height}x{list[i].Channels}; the animation is {width}x{height}x{channels}.", nameof(frames));

        using var animation = new Image<Rgb24>(width, height);
        animation.Metadata.GetGifMetadata().RepeatCount = (ushort)(loop ? 0 : 1); // 0: forever
        for (int i = 0; i < list.Count; i++)
        {
            using var frame = ToImage(list[i]);
            var added = animation.Frames.AddFrame(frame.Frames.RootFrame);
            var metadata = added.Metadata.GetGifMetadata();
            metadata.FrameDelay = Math.Clamp(((i == list.Count - 1 ? lastFrameDelayMs : frameDelayMs) + 5) / 10, 2, ushort.MaxValue);
            metadata.DisposalMethod = GifDisposalMethod.NotDispose;
        }
        animation.Frames.RemoveFrame(0); // the blank frame the image was made with

        // Local tables: a global one would map later frames through a nearest-colour cache that is not exact.
        var encoder = new GifEncoder { ColorTableMode = GifColorTableMode.Local, Quantizer = new OctreeQuantizer(new QuantizerOptions { Dither = null }) };
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        animation.SaveAsGif(path, encoder);
    }

    /// <summary>
    /// Writes a denoising sequence: each tensor [N, C, H, W] in [-1, 1] (e.g. x_T, ..., x_0) becomes one grid frame
    /// (see <see cref="ImageGrid"/>); the final frame is held for <paramref name="lastFrameDelayMs"/>.
    /// </summary>
    public static void SaveDenoising(string path, IEnumerable<Tensor> steps, int columns = 8, int padding = 2, int scale = 1,
        int frameDelayMs = 80, int lastFrameDelayMs = 2000)
        => Save(path, steps.Select(t => ImageGrid.Render(t, columns, padding, scale)), frameDelayMs, lastFrameDelayMs);

    private static Image<Rgb24> ToImage(Raster frame)
    {
        if (frame.Channels == 3) return Image.LoadPixelData<Rgb24>(frame.Pixels, frame.Width, frame.Height);
        using var gray = Image.LoadPixelData<L8>(frame.Pixels, frame.Width, frame.Height);
        return gray.CloneAs<Rgb24>();
    }
}
