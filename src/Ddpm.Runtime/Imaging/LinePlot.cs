using System.Globalization;
using SkiaSharp;

namespace Ddpm.Imaging;

/// <summary>
/// Line charts as PNG, drawn with SkiaSharp: a title, axes with ticks at "nice" values (1, 2, 5 x 10^k;
/// decades on a log axis) and their labels, one coloured line per series, and a legend. Meant for
/// loss curves and noise-schedule curves, not publication figures.
/// </summary>
public static class LinePlot
{
    private const float MarginLeft = 80, MarginRight = 24, MarginTop = 44, MarginBottom = 56;

    // matplotlib's tab10 colours, so plots look familiar.
    private static readonly SKColor[] Colours =
    [
        new(0x1f, 0x77, 0xb4), new(0xff, 0x7f, 0x0e), new(0x2c, 0xa0, 0x2c), new(0xd6, 0x27, 0x28), new(0x94, 0x67, 0xbd),
        new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x7f, 0x7f, 0x7f), new(0xbc, 0xbd, 0x22), new(0x17, 0xbe, 0xcf),
    ];

    /// <summary>
    /// Draws the series and writes a PNG of <paramref name="width"/> x <paramref name="height"/> pixels.
    /// Points whose X or Y is not finite (or Y &lt;= 0 with <paramref name="logY"/>) are left out and break the line.
    /// </summary>
    public static void SavePng(string path, string title, IReadOnlyList<(string Name, double[] X, double[] Y)> series,
        bool logY = false, int width = 800, int height = 500, string? xLabel = null, string? yLabel = null)
    {
        if (width < 200 || height < 150) throw new ArgumentOutOfRangeException(nameof(width), $"A plot needs at least 200x150 pixels, got {width}x{height}.");
        foreach (var s in series)
            if (s.X.Length != s.Y.Length)
                throw new ArgumentException($"Series \"{s.Name}\" has {s.X.Length} x values but {s.Y.Length} y values.", nameof(series));

        bool Usable(double x, double y) => double.IsFinite(x) && double.IsFinite(y) && (!logY || y > 0);
        var xs = series.SelectMany(s => s.X.Where((x, i) => Usable(x, s.Y[i]))).ToList();
        var ys = series.SelectMany(s => s.Y.Where((y, i) => Usable(s.X[i], y))).ToList();
        var xAxis = Axis.Linear(xs.Count > 0 ? xs.Min() : 0, xs.Count > 0 ? xs.Max() : 1);
        var yAxis = logY
            ? Axis.Log(ys.Count > 0 ? ys.Min() : 0.1, ys.Count > 0 ? ys.Max() : 1)
            : Axis.Linear(ys.Count > 0 ? ys.Min() : 0, ys.Count > 0 ? ys.Max() : 1);

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info);
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        var plot = new SKRect(MarginLeft, MarginTop, width - MarginRight, height - MarginBottom);
        float X(double v) => plot.Left + (float)xAxis.Fraction(v) * plot.Width;
        float Y(double v) => plot.Bottom - (float)yAxis.Fraction(v) * plot.Height;

        using var typeface = Fonts.Load();
        using var font = new SKFont(typeface, 13);
        using var titleFont = new SKFont(typeface, 16) { Embolden = true };
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var gridPaint = new SKPaint { Color = new SKColor(0xe6, 0xe6, 0xe6), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var axisPaint = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, Style = SKPaintStyle.Stroke, IsAntialias = false };

        // Grid lines and tick labels.
        foreach (var t in xAxis.Ticks)
        {
            float x = X(t);
            canvas.DrawLine(x, plot.Top, x, plot.Bottom, gridPaint);
            canvas.DrawLine(x, plot.Bottom, x, plot.Bottom + 5, axisPaint);
            canvas.DrawText(xAxis.Label(t), x, plot.Bottom + 20, SKTextAlign.Center, font, text);
        }
        foreach (var t in yAxis.Ticks)
        {
            float y = Y(t);
            canvas.DrawLine(plot.Left, y, plot.Right, y, gridPaint);
            canvas.DrawLine(plot.Left - 5, y, plot.Left, y, axisPaint);
            canvas.DrawText(yAxis.Label(t), plot.Left - 8, y + 4, SKTextAlign.Right, font, text);
        }
        canvas.DrawRect(plot, axisPaint);

        // Title and axis labels.
        canvas.DrawText(title, width / 2f, MarginTop / 2f + 6, SKTextAlign.Center, titleFont, text);
        if (xLabel is not null) canvas.DrawText(xLabel, plot.MidX, height - 12, SKTextAlign.Center, font, text);
        if (yLabel is not null)
        {
            canvas.Save();
            canvas.RotateDegrees(-90, 16, plot.MidY);
            canvas.DrawText(yLabel, 16, plot.MidY + 4, SKTextAlign.Center, font, text);
            canvas.Restore();
        }

        // The lines, clipped to the plot area.
        canvas.Save();
        canvas.ClipRect(plot);
        for (int s = 0; s < series.Count; s++)
        {
            var (_, sx, sy) = series[s];
            using var line = new SKPaint { Color = Colours[s % Colours.Length], StrokeWidth = 2, Style = SKPaintStyle.Stroke, IsAntialias = true, StrokeJoin = SKStrokeJoin.Round };
            using var stroke = new SKPath();
            bool pen = false;
            for (int i = 0; i < sx.Length; i++)
            {
                if (!Usable(sx[i], sy[i])) { pen = false; continue; }
                if (pen) stroke.LineTo(X(sx[i]), Y(sy[i]));
                else stroke.MoveTo(X(sx[i]), Y(sy[i]));
                pen = true;
            }
            canvas.DrawPath(stroke, line);
        }
        canvas.Restore();

        // Legend, top right inside the plot.
        if (series.Count > 0)
        {
            float rowHeight = 18, boxWidth = 36 + series.Max(s => font.MeasureText(s.Name));
            var box = new SKRect(plot.Right - boxWidth - 10, plot.Top + 10, plot.Right - 10, plot.Top + 10 + rowHeight * series.Count + 6);
            using var fill = new SKPaint { Color = SKColors.White.WithAlpha(230), Style = SKPaintStyle.Fill };
            canvas.DrawRect(box, fill);
            canvas.DrawRect(box, gridPaint);
            for (int s = 0; s < series.Count; s++)
            {
                float y = box.Top + 3 + rowHeight * (s + 0.5f);
                using var line = new SKPaint { Color = Colours[s % Colours.Length], StrokeWidth = 2, IsAntialias = true };
                canvas.DrawLine(box.Left + 6, y, box.Left + 26, y, line);
                canvas.DrawText(series[s].Name, box.Left + 32, y + 4, SKTextAlign.Left, font, text);
            }
        }

        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100) ?? throw new IOException($"{path}: SkiaSharp could not encode the PNG.");
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>One axis: its range, how values map to [0, 1] along it, and where its ticks go.</summary>
    private sealed class Axis
    {
        private readonly double min, max;
        private readonly bool log;

        private Axis(double min, double max, bool log, IReadOnlyList<double> ticks, Func<double, string> label)
        {
            (this.min, this.max, this.log) = (min, max, log);
            Ticks = ticks;
            Label = label;
        }

        public IReadOnlyList<double> Ticks { get; }
        public Func<double, string> Label { get; }

        public double Fraction(double v) => log
            ? (Math.Log10(v) - Math.Log10(min)) / (Math.Log10(max) - Math.Log10(min))
            : (v - min) / (max - min);

        /// <summary>About five ticks at multiples of 1, 2 or 5 x 10^k; the axis extends to the ticks just outside the data.</summary>
        public static Axis Linear(double lo, double hi)
        {
            if (hi - lo <= Math.Abs(hi) * 1e-12)
            {
                double pad = lo == 0 ? 1 : Math.Abs(lo) * 0.1;
                (lo, hi) = (lo - pad, hi + pad);
            }
            double step = NiceStep((hi - lo) / 5);
            double start = Math.Floor(lo / step) * step, end = Math.Ceiling(hi / step) * step;
            var ticks = new List<double>();
            for (int k = 0; start + k * step <= end + step * 1e-9; k++) ticks.Add(start + k * step);
            return new Axis(start, end, false, ticks, v => Format(Math.Abs(v) < step * 1e-9 ? 0 : v));
        }

        /// <summary>
        /// From the decade below the data to the one above; ticks at every decade (thinned to about eight),
        /// and at 2 and 5 times each decade too when the axis spans three decades or fewer.
        /// </summary>
        public static Axis Log(double lo, double hi)
        {
            int first = (int)Math.Floor(Math.Log10(lo)), last = (int)Math.Ceiling(Math.Log10(hi));
            if (last == first) last++;
            int every = Math.Max(1, (last - first + 7) / 8);
            double[] mantissas = last - first <= 3 ? [1, 2, 5] : [1];
            var ticks = new List<double>();
            for (int e = first; e <= last; e += every)
                foreach (var m in mantissas)
                    if (e < last || m == 1) ticks.Add(m * Math.Pow(10, e));
            return new Axis(Math.Pow(10, first), Math.Pow(10, last), true, ticks, v =>
            {
                int e = (int)Math.Floor(Math.Log10(v) + 1e-9);
                double m = Math.Round(v / Math.Pow(10, e));
                return e is >= -2 and <= 3 ? Format(v) : m == 1 ? $"1e{e}" : $"{m:0}e{e}";
            });
        }

        private static double NiceStep(double rough)
        {
            double magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
            double f = rough / magnitude;
            return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * magnitude;
        }

        private static string Format(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A typeface that has glyphs: SkiaSharp's default when its font manager finds fonts (fontconfig builds),
    /// else a common TrueType file loaded directly (the NoDependencies native build has no font manager).
    /// </summary>
    private static class Fonts
    {
        private static readonly string[] Candidates =
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
            "/Library/Fonts/Arial.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "C:\\Windows\\Fonts\\arial.ttf",
        ];

        public static SKTypeface Load()
        {
            var typeface = SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;
            if (typeface.GlyphCount > 0) return typeface;
            foreach (var file in Candidates)
                if (File.Exists(file) && SKTypeface.FromFile(file) is { GlyphCount: > 0 } found)
                    return found;
            return typeface; // no font anywhere: text is not drawn, the lines still are
        }
    }
}
