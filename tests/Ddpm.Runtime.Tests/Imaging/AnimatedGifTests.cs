using Ddpm.Imaging;
using Ddpm.Runtime.Tests.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Imaging;

public class AnimatedGifTests
{
    /// <summary>Decodes every frame with SkiaSharp as RGBA.</summary>
    private static List<byte[]> DecodeFrames(string path, out SKImageInfo info)
    {
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException("SkiaSharp cannot open the GIF");
        info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var frames = new List<byte[]>();
        for (int f = 0; f < codec.FrameCount; f++)
        {
            using var bitmap = new SKBitmap(info);
            var result = codec.GetPixels(info, bitmap.GetPixels(), new SKCodecOptions(f));
            Assert.Equal(SKCodecResult.Success, result);
            frames.Add(bitmap.GetPixelSpan().ToArray());
        }
        return frames;
    }

    [Fact]
    public void Denoising_sequence_is_a_gif89a_with_one_frame_per_step()
    {
        using var dir = new TempFolder();
        var path = dir.File("denoise.gif");
        var steps = Enumerable.Range(0, 6).Select(i => full(4, 1, 8, 8, -1f + i * 0.4f)).ToList();

        AnimatedGif.SaveDenoising(path, steps, columns: 2, scale: 2);

        var bytes = File.ReadAllBytes(path);
        Assert.Equal("GIF89a"u8.ToArray(), bytes[..6]);
        Assert.Equal(0x3B, bytes[^1]);
        using var codec = SKCodec.Create(path);
        Assert.Equal(6, codec.FrameCount);
        Assert.Equal((44, 44), (codec.Info.Width, codec.Info.Height)); // (2 * 10 + 2) * 2
        Assert.Equal(80, codec.FrameInfo[0].Duration);
        Assert.Equal(2000, codec.FrameInfo[5].Duration);
        var frames = DecodeFrames(path, out _);
        int inside = (4 * 44 + 4) * 4; // pixel (4, 4): inside image 0
        for (int i = 0; i < 6; i++)
            Assert.Equal(ImageGrid.ToByte(-1f + i * 0.4f), frames[i][inside]);
        Assert.Equal(255, frames[0][0]); // padding stays white
        foreach (var s in steps) s.Dispose();
    }

    [Fact]
    public void Gray_noise_survives_lzw_exactly()
    {
        // 300x200 random grays: far more than 4096 codes, so the table is cleared and rebuilt many times.
        using var dir = new TempFolder();
        var path = dir.File("noise.gif");
        var random = new Random(7);
        var frames = Enumerable.Range(0, 3).Select(_ =>
        {
            var r = new Raster(300, 200, 1);
            random.NextBytes(r.Pixels);
            return r;
        }).ToList();
        // A smooth frame too: long runs exercise long codes.
        var ramp = new Raster(300, 200, 1);
        for (int i = 0; i < ramp.Pixels.Length; i++) ramp.Pixels[i] = (byte)(i / 300 % 4 == 0 ? i % 256 : 17);
        frames.Add(ramp);

        AnimatedGif.Save(path, frames);

        var decoded = DecodeFrames(path, out var info);
        Assert.Equal(4, decoded.Count);
        for (int f = 0; f < frames.Count; f++)
            for (int i = 0; i < info.Width * info.Height; i++)
            {
                byte expected = frames[f].Pixels[i];
                if (decoded[f][4 * i] != expected || decoded[f][4 * i + 1] != expected || decoded[f][4 * i + 2] != expected)
                    Assert.Fail($"frame {f} pixel {i}: expected gray {expected}, got ({decoded[f][4 * i]}, {decoded[f][4 * i + 1]}, {decoded[f][4 * i + 2]})");
            }
    }

    [Fact]
    public void Rgb_frames_use_the_colour_cube_exactly_where_it_has_the_colour()
    {
        using var dir = new TempFolder();
        var path = dir.File("colour.gif");
        var random = new Random(11);
        var frame = new Raster(64, 48, 3);
        for (int i = 0; i < frame.Pixels.Length; i++) frame.Pixels[i] = (byte)(51 * random.Next(6)); // cube colours
        var grays = new Raster(64, 48, 3);
        for (int i = 0; i < 64 * 48; i++) grays.Pixels[3 * i] = grays.Pixels[3 * i + 1] = grays.Pixels[3 * i + 2] = (byte)(i % 256);

        using (var gif = new AnimatedGif(path, frameDelayMs: 50))
        {
            gif.AddFrame(frame);
            gif.AddFrame(grays);
            Assert.Equal(2, gif.FrameCount);
        }

        var decoded = DecodeFrames(path, out _);
        for (int i = 0; i < 64 * 48; i++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(frame.Pixels[3 * i + c], decoded[0][4 * i + c]);
        for (int i = 0; i < 64 * 48; i++)
        {
            int v = i % 256, r = decoded[1][4 * i];
            Assert.Equal(r, decoded[1][4 * i + 1]); // grays stay gray
            Assert.Equal(r, decoded[1][4 * i + 2]);
            Assert.InRange(r - v, -4, 4);            // 46 gray levels: within 4 of the original
        }
    }

    [Fact]
    public void Frames_must_match_the_first_frame()
    {
        using var dir = new TempFolder();
        using var gif = new AnimatedGif(dir.File("x.gif"));
        gif.AddFrame(new Raster(4, 4, 1));
        Assert.Throws<ArgumentException>(() => gif.AddFrame(new Raster(4, 5, 1)));
        Assert.Throws<ArgumentException>(() => gif.AddFrame(new Raster(4, 4, 3)));
    }

    [Fact]
    public void Single_pixel_frames_encode()
    {
        using var dir = new TempFolder();
        var path = dir.File("one.gif");
        AnimatedGif.Save(path, [new Raster(1, 1, 1, [200]), new Raster(1, 1, 1, [3])]);
        var decoded = DecodeFrames(path, out _);
        Assert.Equal(200, decoded[0][0]);
        Assert.Equal(3, decoded[1][0]);
    }
}
