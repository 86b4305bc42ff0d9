using System.Globalization;
using ScottPlot;

namespace Ddpm.Imaging;

/// <summary>
/// Line charts as PNG, drawn by ScottPlot: a title, axis labels, one line per series in matplotlib's tab10
/// colours (ScottPlot's default palette) and a legend beside the data. Meant for loss, metric and
/// noise-schedule curves.
/// </summary>
public static class LinePlot
{
    // Skia without fontconfig (the NoDependencies build) offers DejaVu Serif as ScottPlot's sans font; prefer DejaVu Sans where it is installed.
    private static readonly string Font = Fonts.GetTypeface("DejaVu Sans", false, false)?.FamilyName == "DejaVu Sans" ? "DejaVu Sans" : Fonts.Sans;

    /// <summary>
    /// Draws the series and writes a PNG of <paramref name="width"/> x <paramref name="height"/> pixels.
    /// Points whose X or Y is not finite (or Y &lt;= 0 with <paramref name="logY"/>) are left out and break the line.
    /// </summary>
    public static void SavePng(string path, string title, IReadOnlyList<(string Name, double[] X, double[] Y)> series,
        bool logY = false, int width = 800, int height = 500, string? xLabel = null, string? yLabel = null)
    {
        CheckSize(width, height);
        foreach (var s in series)
            if (s.X.Length != s.Y.Length)
                throw new ArgumentException($"Series \"{s.Name}\" has {s.X.Length} x values but {s.Y.Length} y values.", nameof(series));

        using var plot = NewPlot(title, xLabel, yLabel);
        foreach (var (name, x, y) in series)
        {
            var line = AddLine(plot, x, y, logY, plot.Add.GetNextColor(), 2);
            line.LegendText = name;
        }
        Save(plot, path, series.SelectMany(s => s.Y), logY, width, height);
    }

    /// <summary>
    /// A training-loss curve on a log scale: the raw loss of every step as a thin, faint line and
    /// <paramref name="smoothed"/> (e.g. a moving average) drawn over it in the same colour.
    /// </summary>
    public static void SaveLossCurve(string path, string title, double[] steps, double[] loss, double[] smoothed,
        int width = 800, int height = 500)
    {
        CheckSize(width, height);
        if (loss.Length != steps.Length || smoothed.Length != steps.Length)
            throw new ArgumentException($"{steps.Length} steps need as many losses and smoothed losses, got {loss.Length} and {smoothed.Length}.", nameof(loss));

        using var plot = NewPlot(title, "step", "loss");
        var colour = plot.Add.GetNextColor();
        AddLine(plot, steps, loss, logY: true, colour.WithOpacity(0.3), 1).LegendText = "loss";
        AddLine(plot, steps, smoothed, logY: true, colour, 2).LegendText = "smoothed";
        Save(plot, path, loss.Concat(smoothed), logY: true, width, height);
    }

    private static void CheckSize(int width, int height)
    {
        if (width < 200 || height < 150) throw new ArgumentOutOfRangeException(nameof(width), $"A plot needs at least 200x150 pixels, got {width}x{height}.");
    }

    private static Plot NewPlot(string title, string? xLabel, string? yLabel)
    {
        var plot = new Plot();
        plot.Font.Set(Font);
        if (title.Length > 0) plot.Title(title);
        if (xLabel is not null) plot.XLabel(xLabel);
        if (yLabel is not null) plot.YLabel(yLabel);
        return plot;
    }

    /// <summary>A line without markers; unusable points become NaN, which ScottPlot leaves as a gap.</summary>
    private static ScottPlot.Plottables.Scatter AddLine(Plot plot, double[] x, double[] y, bool logY, Color colour, float width)
    {
        var xs = new double[x.Length];
        var ys = new double[y.Length];
        for (int i = 0; i < x.Length; i++)
        {
            bool usable = double.IsFinite(x[i]) && double.IsFinite(y[i]) && (!logY || y[i] > 0);
            (xs[i], ys[i]) = usable ? (x[i], logY ? Math.Log10(y[i]) : y[i]) : (double.NaN, double.NaN);
        }
        var line = plot.Add.ScatterLine(xs, ys, colour);
        line.LineWidth = width;
        if (xs.Count(double.IsFinite) == 1) line.MarkerSize = 3 * width; // a lone point (one evaluation so far) has no line to show
        return line;
    }

    private static void Save(Plot plot, string path, IEnumerable<double> values, bool logY, int width, int height)
    {
        if (logY)
        {
            // ScottPlot has no log axis: the lines hold log10(y), the axis spans whole decades (and a
            // little more, so lines on a decade are not hidden by the frame) and labels each decade with
            // its value; minor ticks sit at 2..9 times each decade.
            var positive = values.Where(v => double.IsFinite(v) && v > 0).ToList();
            int low = positive.Count > 0 ? (int)Math.Floor(Math.Log10(positive.Min())) : -1;
            int high = positive.Count > 0 ? (int)Math.Ceiling(Math.Log10(positive.Max())) : 0;
            if (high == low) high++;
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                IntegerTicksOnly = true,
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                LabelFormatter = DecadeLabel,
            };
            double pad = 0.03 * (high - low);
            plot.Axes.SetLimitsY(low - pad, high + pad);
        }
        // Beside the data, where it hides no line. Not without entries: an empty legend panel blanks the whole image.
        if (plot.GetPlottables().Any()) plot.ShowLegend(Edge.Right);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        plot.SavePng(path, width, height);
    }

    /// <summary>10^e as a plain number for e in -3..3 (0.001 .. 1000), else as 1e{e}.</summary>
    private static string DecadeLabel(double exponent)
    {
        int e = (int)Math.Round(exponent);
        return e is >= -3 and <= 3 ? Math.Pow(10, e).ToString("G6", CultureInfo.InvariantCulture) : $"1e{e}";
    }
}
