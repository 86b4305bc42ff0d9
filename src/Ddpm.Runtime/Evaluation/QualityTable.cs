using System.Globalization;
using System.Text;

namespace Ddpm.Evaluation;

/// <summary>A <see cref="QualityReport"/> as a plain-text table: every score beside its floor.</summary>
public static class QualityTable
{
    /// <summary>The table, lines ending in '\n'; <paramref name="title"/> replaces the first line's default text.</summary>
    public static string Render(QualityReport report, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        var floor = report.Floor;
        var rows = new List<(string Name, string Value, string Floor)>
        {
            ("n", N(report.Count), floor is null ? "" : N(floor.Count)),
            ("FID (lower is better)", F(report.Fid, 3), floor is null ? "" : F(floor.Fid, 3)),
            ("KID (mean ± std)", Kid(report), floor is null ? "" : Kid(floor)),
            ($"precision (k={report.NearestK})", F(report.Precision, 3), floor is null ? "" : F(floor.Precision, 3)),
            ($"recall (k={report.NearestK})", F(report.Recall, 3), floor is null ? "" : F(floor.Recall, 3)),
            ($"class entropy, bits (max {F(report.Classes.MaxEntropyBits, 3)})", F(report.ClassEntropyBits, 3), floor is null ? "" : F(floor.ClassEntropyBits, 3)),
            ("class shares", "", ""),
        };
        var shares = report.Classes.Shares;
        var floorShares = floor?.Classes.Shares;
        for (int i = 0; i < shares.Count; i++)
            rows.Add(($"  {report.Classes.ClassNames[i]}", Percent(shares[i]), floorShares is null ? "" : Percent(floorShares[i])));
        if (report.Agreement is { } agreement)
        {
            // Drawn by class: the share the feature net assigns to the class asked for (its own test accuracy bounds it).
            rows.Add(("drawn as the class asked for", Percent(agreement.Overall), ""));
            var correct = agreement.Shares;
            for (int i = 0; i < correct.Count; i++)
                if (agreement.Requested[i] > 0)
                    rows.Add(($"  {agreement.ClassNames[i]} ({N(agreement.Requested[i])} asked)", Percent(correct[i]), ""));
        }

        int nameWidth = rows.Max(r => r.Name.Length);
        int valueWidth = Math.Max("samples".Length, rows.Max(r => r.Value.Length));
        int floorWidth = Math.Max("floor (real train)".Length, rows.Max(r => r.Floor.Length));
        var text = new StringBuilder();
        text.Append(title ?? string.Create(CultureInfo.InvariantCulture,
            $"Sample quality against {report.Dataset}: {N(report.ReferenceCount)} test images as the reference"));
        text.Append('\n');
        text.Append(string.Create(CultureInfo.InvariantCulture,
            $"feature net: {FeatureNet.FeatureDimension}-d penultimate layer of a classifier with test accuracy {report.ClassifierAccuracy * 100:F2}%\n"));
        text.Append(' ', nameWidth + 2).Append("samples".PadLeft(valueWidth));
        if (floor is not null) text.Append("  ").Append("floor (real train)".PadLeft(floorWidth));
        text.Append('\n');
        foreach (var (name, value, floorValue) in rows)
        {
            text.Append(name.PadRight(nameWidth + 2)).Append(value.PadLeft(valueWidth));
            if (floor is not null) text.Append("  ").Append(floorValue.PadLeft(floorWidth));
            text.Append('\n');
        }
        text.Append(string.Create(CultureInfo.InvariantCulture,
            $"KID over {report.KidSubsets} subsets of {report.KidSubsetSize} (seed {report.Seed}); the floor is {N(floor?.Count ?? report.Count)} real training images against the same reference.\n"));
        return text.ToString();
    }

    private static string N(int n) => n.ToString("N0", CultureInfo.InvariantCulture);
    private static string F(double v, int decimals) => v.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    private static string Percent(double share) => (share * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";

    /// <summary>KID to 5 decimals: real-vs-real is about 0 and visibly bad samples are 0.01 and up.</summary>
    private static string Kid(QualityReport r) => $"{F(r.KidMean, 5)} ± {F(r.KidStd, 5)}";
}
