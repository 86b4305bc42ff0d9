using Ddpm.Imaging;
using Ddpm.Runtime.Tests.Data;
using SkiaSharp;

namespace Ddpm.Runtime.Tests.Imaging;

public class LinePlotTests
{
    // matplotlib's tab10, ScottPlot's default palette.
    private static readonly SKColor Blue = new(0x1f, 0x77, 0xb4), Orange = new(0xff, 0x7f, 0x0e), Green = new(0x2c, 0xa0, 0x2c);

    private static int DarkPixels(SKBitmap bitmap) => Count(bitmap, c => c.Red + c.Green + c.Blue < 200);

    private static int Count(SKBitmap bitmap, Func<SKColor, bool> match)
    {
        int n = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
                if (match(bitmap.GetPixel(x, y))) n++;
        return n;
    }

    /// <summary>The mean row of the pixels of about <paramref name="colour"/> in column <paramref name="x"/>.</summary>
    private static double RowOf(SKBitmap bitmap, int x, SKColor colour)
    {
        static int Distance(SKColor a, SKColor b) => Math.Abs(a.Red - b.Red) + Math.Abs(a.Green - b.Green) + Math.Abs(a.Blue - b.Blue);
        var rows = Enumerable.Range(0, bitmap.Height).Where(y => Distance(bitmap.GetPixel(x, y), colour) < 30).ToList();
        Assert.True(rows.Count > 0, $"no pixel of {colour} in column {x}");
        return rows.Average();
    }

    [Fact]
    public void Loss_curve_png_has_the_requested_size_and_draws_the_smoothed_line_over_the_faint_raw_one()
    {
        using var dir = new TempFolder();
        var random = new Random(3);
        var steps = Enumerable.Range(0, 500).Select(i => (double)i).ToArray();
        var loss = steps.Select(i => (1.0 / (1 + i / 20) + 0.02) * (0.5 + random.NextDouble())).ToArray();
        var smooth = steps.Select(i => 1.0 / (1 + i / 20) + 0.02).ToArray();
        var path = dir.File("plots/loss.png");

        LinePlot.SaveLossCurve(path, "Training loss", steps, loss, smooth, width: 640, height: 400);

        using var bitmap = SKBitmap.Decode(path);
        Assert.Equal((640, 400), (bitmap.Width, bitmap.Height));
        Assert.Equal(SKColors.White, bitmap.GetPixel(2, 2));
        Assert.True(DarkPixels(bitmap) > 500, "axes, ticks and labels should be drawn in black");
        int solid = Count(bitmap, c => c == Blue);
        // The raw loss: tab:blue at 30 % over white, about (188, 214, 232).
        int faint = Count(bitmap, c => Math.Abs(c.Red - 188) < 12 && Math.Abs(c.Green - 214) < 12 && Math.Abs(c.Blue - 232) < 12);
        Assert.True(solid > 300, $"the smoothed line should be drawn in tab:blue, found {solid} pixels");
        Assert.True(faint > 300, $"the raw loss should be drawn in faint blue, found {faint} pixels");
    }

    [Fact]
    public void Log_scale_puts_each_decade_the_same_distance_apart()
    {
        using var dir = new TempFolder();
        var x = Enumerable.Range(0, 50).Select(i => (double)i).ToArray();
        double[] Constant(double v) => x.Select(_ => v).ToArray();
        var path = dir.File("log.png");

        LinePlot.SavePng(path, "Decades", [("1", x, Constant(1)), ("0.1", x, Constant(0.1)), ("0.01", x, Constant(0.01))], logY: true);

        using var bitmap = SKBitmap.Decode(path);
        double one = RowOf(bitmap, 300, Blue), tenth = RowOf(bitmap, 300, Orange), hundredth = RowOf(bitmap, 300, Green);
        Assert.True(one < tenth && tenth < hundredth, $"rows {one}, {tenth}, {hundredth}: larger values are higher");
        Assert.InRange(tenth - one, hundredth - tenth - 2, hundredth - tenth + 2); // on a linear axis 0.1 would sit by 0.01
        Assert.True(hundredth - one > 200, $"the decades should span the plot, got {hundredth - one} rows");
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
    public void Schedule_curves_with_gaps_and_bad_values_are_drawn()
    {
        using var dir = new TempFolder();
        var t = Enumerable.Range(0, 1000).Select(i => (double)i).ToArray();
        var betas = t.Select(i => i == 500 ? double.NaN : i == 600 ? double.PositiveInfinity : 1e-4 + i * 2e-5).ToArray();
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
            Assert.True(DarkPixels(bitmap) > 500, $"{name}: axes and labels should be drawn");
        }
        using var linear = SKBitmap.Decode(dir.File("linear.png"));
        Assert.True(Count(linear, c => c == Blue) > 300 && Count(linear, c => c == Orange) > 300, "both schedules should be drawn");
        using var log = SKBitmap.Decode(dir.File("log.png"));
        Assert.True(Count(log, c => c == Blue) > 300, "beta should be drawn on the log axis");
    }

    [Fact]
    public void Mismatched_series_lengths_are_refused()
    {
        using var dir = new TempFolder();
        Assert.Throws<ArgumentException>(() => LinePlot.SavePng(dir.File("x.png"), "t", [("s", new double[3], new double[2])]));
        Assert.Throws<ArgumentException>(() => LinePlot.SaveLossCurve(dir.File("y.png"), "t", new double[3], new double[3], new double[2]));
        Assert.False(File.Exists(dir.File("x.png")) || File.Exists(dir.File("y.png")));
    }
}
