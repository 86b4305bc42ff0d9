using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Imaging;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Evaluation;

public class ImageLevelsTests
{
    private static float[] Values(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray();

    [Fact]
    public void All_256_levels_round_trip_through_minus_one_to_one_exactly()
    {
        var levels = Enumerable.Range(0, 256).Select(l => (float)l).ToArray();
        using var scope = NewDisposeScope();
        var scaled = ImageLevels.FromLevels(tensor(levels));
        var back = Values(ImageLevels.ToLevels(scaled));

        Assert.Equal(levels, back);
        var s = Values(scaled);
        Assert.Equal(-1f, s[0]);
        Assert.Equal(1f, s[255]);
        for (int l = 0; l < 256; l++) Assert.Equal(l / 127.5f - 1f, s[l]);
    }

    [Fact]
    public void To_levels_rounds_half_up_and_clamps()
    {
        using var scope = NewDisposeScope();
        // (v + 1) * 127.5 + 0.5, floored: 0 -> 128 (127.5 rounds up), -1 -> 0, 1 -> 255,
        // v just below the boundary between levels 0 and 1 (v + 1 = 1 / 255 - tiny) -> 0, at it -> 1.
        float[] v = [0f, -1f, 1f, -2f, 3f, 1f / 255 - 1 - 1e-4f, 1f / 255 - 1 + 1e-4f, 0.5f];
        var levels = Values(ImageLevels.ToLevels(tensor(v)));
        Assert.Equal(new float[] { 128, 0, 255, 0, 255, 0, 1, 191 }, levels); // 1.5 * 127.5 + 0.5 = 191.75
    }

    [Fact]
    public void Nan_and_minus_infinity_become_level_0_plus_infinity_255()
    {
        using var scope = NewDisposeScope();
        var levels = Values(ImageLevels.ToLevels(tensor(new[] { float.NaN, float.NegativeInfinity, float.PositiveInfinity })));
        Assert.Equal(new float[] { 0, 0, 255 }, levels);
    }

    [Fact]
    public void To_levels_agrees_with_the_png_writers_byte_rounding()
    {
        // The documented contract: a sample is scored as the PNG ImageGrid would save.
        var random = new Random(7);
        var v = Enumerable.Range(0, 20001).Select(i => -1.2f + 2.4f * i / 20000).Concat(
                Enumerable.Range(0, 256).Select(l => l / 127.5f - 1f)).Concat(
                Enumerable.Range(0, 5000).Select(_ => (float)(random.NextDouble() * 2 - 1))).ToArray();
        using var scope = NewDisposeScope();
        var levels = Values(ImageLevels.ToLevels(tensor(v)));
        for (int i = 0; i < v.Length; i++)
            Assert.True(ImageGrid.ToByte(v[i]) == levels[i], $"v = {v[i]:R}: ToByte {ImageGrid.ToByte(v[i])}, ToLevels {levels[i]}");
    }

    [Fact]
    public void Quantize_snaps_to_the_nearest_level_in_minus_one_to_one()
    {
        using var scope = NewDisposeScope();
        var q = Values(ImageLevels.Quantize(tensor(new[] { 0f, 0.004f, float.NaN, 7f })));
        Assert.Equal(new[] { 128 / 127.5f - 1, 128 / 127.5f - 1, -1f, 1f }, q); // 0.004 -> 128.01 -> level 128
    }

    [Fact]
    public void From_bytes_picks_indices_in_order_and_flips_rows_per_image()
    {
        // Three 2-channel 2x3 images whose bytes are 0..35.
        var set = new ImageSet(Enumerable.Range(0, 36).Select(i => (byte)i).ToArray(), 3, 2, 2, 3);
        using var scope = NewDisposeScope();
        var t = ImageLevels.FromBytes(set, [2, 0], [true, false]);

        Assert.Equal(new long[] { 2, 2, 2, 3 }, t.shape);
        var levels = Values(ImageLevels.ToLevels(t));
        // Image 2 (bytes 24..35) mirrored row by row in both channels, then image 0 as is.
        float[] expected = [26, 25, 24, 29, 28, 27, 32, 31, 30, 35, 34, 33, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        Assert.Equal(expected, levels);
        Assert.Equal(expected.Select(l => l / 127.5f - 1f), Values(t));

        Assert.Throws<ArgumentException>(() => ImageLevels.FromBytes(set, [0, 1], [true]));
    }

    [Fact]
    public void To_image_set_quantises_like_to_levels()
    {
        using var scope = NewDisposeScope();
        var images = tensor(new[] { -1f, 0f, 1f, float.NaN, 0.5f, -0.999f }, [2, 1, 1, 3]);
        var set = ImageLevels.ToImageSet(images);
        Assert.Equal((2, 1, 1, 3), (set.Count, set.Channels, set.Height, set.Width));
        Assert.Equal(new byte[] { 0, 128, 255, 0, 191, 0 }, set.Pixels); // -0.999: 0.1275 + 0.5 -> 0
        Assert.Throws<ArgumentException>(() => ImageLevels.ToImageSet(zeros(1, 3, 3)));
    }
}
