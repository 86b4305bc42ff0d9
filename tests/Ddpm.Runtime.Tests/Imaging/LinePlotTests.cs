using Ddpm.Imaging;
using Ddpm.Runtime.Tests.Data;
using SkiaSharp;

namespace Ddpm.Runtime.Tests.Imaging;

public class LinePlotTests
{
    private static int DarkPixels(SKBitmap bitmap)
    {
        int dark = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (c.Red + c.Green + c.Blue < 200) dark++;
            }
        return dark;
    }

    [Fact]
    public void Loss_curve_png_has_the_requested_size_and_draws_the_lines()
    {
        using var dir = new TempFolder();
        var x = Enumerable.Range(0, 500).Select(i => (double)i).ToArray();
        var loss = x.Select(i => 1.0 / (1 + i / 20) + 0.02).ToArray();
        var smooth = loss.Select(v => v * 0.9).ToArray();
        var path = dir.File("plots/loss.png");

        LinePlot.SavePng(path, "Training loss", [("loss", x, loss), ("ema", x, smooth)], logY: true, width: 640, height: 400, xLabel: "step");

        using var bitmap = SKBitmap.Decode(path);
        Assert.Equal((640, 400), (bitmap.Width, bitmap.Height));
        Assert.Equal(SKColors.White, bitmap.GetPixel(2, 2));
        Assert.True(DarkPixels(bitmap) > 500, "axes, ticks and labels should be drawn in black");
        int blue = 0;
        for (int py = 0; py < bitmap.Height; py++)
            for (int px = 0; px < bitmap.Width; px++)
                if (bitmap.GetPixel(px, py) == new SKColor(0x1f, 0x77, 0xb4)) blue++;
        Assert.True(blue > 100, $"the first series should be drawn in tab:blue, found {blue} pixels");
    }

    [Fact]
    public void Text_is_rendered_when_a_font_is_available()
    {
        using var dir = new TempFolder();
        var x = new double[] { 0, 1 };
        LinePlot.SavePng(dir.File("a.png"), "", [("s", x, x)]);
        LinePlot.SavePng(dir.File("b.png"), "A long title that needs many dark pixels", [("s", x, x)]);
        using var a = SKBitmap.Decode(dir.File("a.png"));
        using var b = SKBitmap.Decode(dir.File("b.png"));
        Assert.True(DarkPixels(b) > DarkPixels(a) + 100, "the title should add dark pixels");
    }

    [Fact]
    public void Schedule_curves_with_gaps_and_bad_values_do_not_fail()
    {
        using var dir = new TempFolder();
        var t = Enumerable.Range(0, 1000).Select(i => (double)i).ToArray();
        var betas = t.Select(i => i == 500 ? double.NaN : 1e-4 + i * 2e-5).ToArray();
        var alphasBar = t.Select(i => Math.Exp(-i / 200.0)).ToArray();
        var zeros = t.Select(_ => 0.0).ToArray();

        LinePlot.SavePng(dir.File("linear.png"), "Schedules", [("beta", t, betas), ("alpha_bar", t, alphasBar)]);
        LinePlot.SavePng(dir.File("log.png"), "Schedules", [("beta", t, betas), ("zero", t, zeros)], logY: true);
        LinePlot.SavePng(dir.File("flat.png"), "Flat", [("c", t, zeros)]);
        LinePlot.SavePng(dir.File("empty.png"), "Nothing", []);

        foreach (var name in new[] { "linear.png", "log.png", "flat.png", "empty.png" })
        {
            using var bitmap = SKBitmap.Decode(dir.File(name));
            Assert.Equal((800, 500), (bitmap.Width, bitmap.Height));
        }
    }

    [Fact]
    public void Mismatched_series_lengths_are_refused()
    {
        using var dir = new TempFolder();
        Assert.Throws<ArgumentException>(() => LinePlot.SavePng(dir.File("x.png"), "t", [("s", new double[3], new double[2])]));
    }
}
