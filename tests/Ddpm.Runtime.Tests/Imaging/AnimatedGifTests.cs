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
        Assert.Equal(-1, codec.RepetitionCount); // loops forever (NETSCAPE2.0 with count 0)
        Assert.Contains("NETSCAPE2.0", System.Text.Encoding.ASCII.GetString(bytes));
        var frames = DecodeFrames(path, out _);
        int inside = (4 * 44 + 4) * 4; // pixel (4, 4): inside image 0
        for (int i = 0; i < 6; i++)
            Assert.Equal(ImageGrid.ToByte(-1f + i * 0.4f), frames[i][inside]);
        Assert.Equal(255, frames[0][0]); // padding stays white
        foreach (var s in steps) s.Dispose();
    }

    [Fact]
    public void Gray_frames_survive_exactly_up_to_255_levels_and_within_one_level_with_256()
    {
        // 300x200 random grays; LZW's table fills and restarts many times.
        using var dir = new TempFolder();
        var path = dir.File("noise.gif");
        var random = new Random(7);
        Raster Noise(int levels)
        {
            var r = new Raster(300, 200, 1);
            for (int i = 0; i < r.Pixels.Length; i++) r.Pixels[i] = (byte)random.Next(levels);
            return r;
        }
        // A smooth frame too: long runs exercise long codes.
        var ramp = new Raster(300, 200, 1);
        for (int i = 0; i < ramp.Pixels.Length; i++) ramp.Pixels[i] = (byte)(i / 300 % 4 == 0 ? i % 255 : 17);
        Raster[] frames = [Noise(255), ramp, Noise(256)];

        AnimatedGif.Save(path, frames);

        var decoded = DecodeFrames(path, out var info);
        Assert.Equal(3, decoded.Count);
        int n = info.Width * info.Height, exactIn256 = 0;
        for (int f = 0; f < frames.Length; f++)
            for (int i = 0; i < n; i++)
            {
                byte expected = frames[f].Pixels[i];
                int r = decoded[f][4 * i];
                if (r != decoded[f][4 * i + 1] || r != decoded[f][4 * i + 2] || Math.Abs(r - expected) > (f < 2 ? 0 : 1))
                    Assert.Fail($"frame {f} pixel {i}: expected gray {expected}, got ({r}, {decoded[f][4 * i + 1]}, {decoded[f][4 * i + 2]})");
                if (f == 2 && r == expected) exactIn256++;
            }
        // The palette has 255 entries for colours (ImageSharp keeps one back), so two of 256 levels share one.
        Assert.True(exactIn256 > n * 0.99, $"{exactIn256} of {n} pixels exact in the 256-level frame");
    }

    [Fact]
    public void Rgb_frames_keep_their_colours()
    {
        using var dir = new TempFolder();
        var path = dir.File("colour.gif");
        var random = new Random(11);
        // At most 216 colours: a palette of 256 holds every one of them exactly.
        var cube = new Raster(64, 48, 3);
        for (int i = 0; i < cube.Pixels.Length; i++) cube.Pixels[i] = (byte)(51 * random.Next(6));
        // 256 grays plus a red square: more colours than a palette holds, so they come back close, not exact.
        var grays = new Raster(64, 48, 3);
        for (int i = 0; i < 64 * 48; i++) grays.Pixels[3 * i] = grays.Pixels[3 * i + 1] = grays.Pixels[3 * i + 2] = (byte)(i % 256);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) (grays.Pixels[3 * (y * 64 + x)], grays.Pixels[3 * (y * 64 + x) + 1], grays.Pixels[3 * (y * 64 + x) + 2]) = (230, 20, 20);

        AnimatedGif.Save(path, [cube, grays], frameDelayMs: 50);

        var decoded = DecodeFrames(path, out var info);
        Assert.Equal((2, 64, 48), (decoded.Count, info.Width, info.Height));
        for (int i = 0; i < 64 * 48; i++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(cube.Pixels[3 * i + c], decoded[0][4 * i + c]);
        for (int i = 0; i < 64 * 48; i++)
            for (int c = 0; c < 3; c++)
                Assert.InRange(decoded[1][4 * i + c] - grays.Pixels[3 * i + c], -8, 8);
    }

    [Fact]
    public void Frames_must_match_the_first_frame()
    {
        using var dir = new TempFolder();
        Assert.Throws<ArgumentException>(() => AnimatedGif.Save(dir.File("x.gif"), [new Raster(4, 4, 1), new Raster(4, 5, 1)]));
        Assert.Throws<ArgumentException>(() => AnimatedGif.Save(dir.File("y.gif"), [new Raster(4, 4, 1), new Raster(4, 4, 3)]));
        Assert.Throws<ArgumentException>(() => AnimatedGif.Save(dir.File("z.gif"), []));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Single_pixel_frames_encode()
    {
        using var dir = new TempFolder();
        var path = dir.File("one.gif");
        AnimatedGif.Save(path, [new Raster(1, 1, 1, [200]), new Raster(1, 1, 1, [3])], loop: false);
        Assert.DoesNotContain("NETSCAPE2.0", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(path))); // no loop extension: plays once
        var decoded = DecodeFrames(path, out _);
        Assert.Equal(200, decoded[0][0]);
        Assert.Equal(3, decoded[1][0]);
    }
}
