using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm eval --compare a.json b.json`: two results of `ddpm eval --json` side by side, each score beside the other and
/// their ratio. Scores from different feature nets do not compare (docs/quality.md), so results that do not name the same
/// net (weights_sha256) are refused with one line and exit code 2.
/// </summary>
internal static class EvalComparison
{
    /// <summary>One eval result, read from its JSON.</summary>
    private sealed record Result(string Path, JsonElement Root)
    {
        public string Dataset => Root.TryGetProperty("dataset", out var d) ? d.GetString() ?? "?" : "?";
        public JsonElement Samples => Root.GetProperty("samples");
        public JsonElement? Floor => Root.TryGetProperty("floor", out var f) && f.ValueKind == JsonValueKind.Object ? f : null;
        public JsonElement FeatureNet => Root.GetProperty("feature_net");
        public string? WeightsSha256 => FeatureNet.TryGetProperty("weights_sha256", out var w) ? w.GetString() : null;
        public JsonElement? Context => Root.TryGetProperty("context", out var c) && c.ValueKind == JsonValueKind.Object ? c : null;
    }

    /// <summary>Writes the comparison of <paramref name="first"/> and <paramref name="second"/> to <paramref name="output"/>.</summary>
    /// <exception cref="UsageException">A file is missing or not an eval result, or the two were scored with different feature nets.</exception>
    public static void Run(string first, string second, TextWriter output)
    {
        using var a = Open(first);
        using var b = Open(second);
        var (ra, rb) = (new Result(first, a.RootElement), new Result(second, b.RootElement));
        foreach (var r in new[] { ra, rb })
            if (r.WeightsSha256 is null)
                throw new UsageException($"{r.Path} does not name its feature net (no feature_net.weights_sha256: an older ddpm eval wrote it); " +
                                         "scores compare only from the same net, so score it again.");
        if (ra.WeightsSha256 != rb.WeightsSha256)
            throw new UsageException($"refusing to compare: {first} and {second} were scored with different feature nets (weights sha256 " +
                                     $"{Prefix(ra.WeightsSha256!)} and {Prefix(rb.WeightsSha256!)}), so their scores do not compare; score both with the same net.");
        output.Write(Render(ra, rb));
    }

    /// <summary>The first 12 digits of a SHA-256, as the console prints a net's name.</summary>
    private static string Prefix(string sha256) => sha256[..Math.Min(12, sha256.Length)];

    private static JsonDocument Open(string path)
    {
        Options.RequireFile(path, "a JSON file", "--compare");
        JsonDocument document;
        try { document = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new UsageException($"--compare: {path} is not JSON ({e.Message.Split('\n')[0].TrimEnd('.')})."); }
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("samples", out var samples) || samples.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("feature_net", out var net) || net.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new UsageException($"--compare: {path} is not a result of ddpm eval --json (it has no \"samples\" and \"feature_net\").");
        }
        return document;
    }

    private static string Render(Result a, Result b)
    {
        string nameA = Path.GetFileName(a.Path), nameB = Path.GetFileName(b.Path);
        if (nameA == nameB) (nameA, nameB) = (a.Path, b.Path);
        var rows = new List<(string Name, string A, string B, string Ratio)>();
        void Context(string key, string label)
        {
            string? va = Text(a.Context, key), vb = Text(b.Context, key);
            if (va is not null || vb is not null) rows.Add((label, va ?? "", vb ?? "", ""));
        }
        Context("input", "input");
        Context("model", "model");
        Context("step", "step");
        Context("weights", "weights");
        Context("sampler", "sampler");
        Context("model_calls", "model calls");
        Context("class", "class");
        Context("guidance", "guidance");
        Context("seed", "seed");

        var (sa, sb) = (a.Samples, b.Samples);
        rows.Add(("n", Text(sa, "n") ?? "", Text(sb, "n") ?? "", ""));
        Score("FID (lower is better)", "fid", 3);
        rows.Add(("KID (mean ± std)", Kid(sa), Kid(sb), Ratio(Number(sa, "kid_mean"), Number(sb, "kid_mean"))));
        Score("precision", "precision", 3);
        Score("recall", "recall", 3);
        Score("class entropy, bits", "class_entropy_bits", 3);
        double? Asked(JsonElement samples) => samples.TryGetProperty("requested_classes", out var q) ? Number(q, "correct_share") : null;
        if (Asked(sa) is not null || Asked(sb) is not null)
            rows.Add(("drawn as the class asked for", Percent(Asked(sa)), Percent(Asked(sb)), ""));
        var classesA = Classes(sa);
        var classesB = Classes(sb);
        if (classesA.Count + classesB.Count > 0)
        {
            rows.Add(("class shares", "", "", ""));
            foreach (string name in classesA.Keys.Concat(classesB.Keys).Distinct())
                rows.Add(($"  {name}", Percent(classesA.GetValueOrDefault(name, double.NaN)), Percent(classesB.GetValueOrDefault(name, double.NaN)), ""));
        }
        if (a.Floor is { } fa && b.Floor is { } fb)
            rows.Add(("floor FID (real train, same n)", Format(Number(fa, "fid"), 3), Format(Number(fb, "fid"), 3), ""));

        void Score(string label, string key, int decimals)
        {
            double? va = Number(sa, key), vb = Number(sb, key);
            rows.Add((label, Format(va, decimals), Format(vb, decimals), Ratio(va, vb)));
        }

        var text = new StringBuilder();
        string sha = a.WeightsSha256!;
        string accuracy = Number(a.FeatureNet, "test_accuracy") is double acc ? $", test accuracy {Percent(acc)}" : "";
        text.Append($"Two eval results against {a.Dataset}, scored with the same feature net (weights sha256 {Prefix(sha)}{accuracy})\n");
        int nameWidth = rows.Max(r => r.Name.Length);
        int widthA = Math.Max(nameA.Length, rows.Max(r => r.A.Length));
        int widthB = Math.Max(nameB.Length, rows.Max(r => r.B.Length));
        const string ratioHeader = "second / first";
        text.Append(' ', nameWidth + 2).Append(nameA.PadLeft(widthA)).Append("  ").Append(nameB.PadLeft(widthB)).Append("  ").Append(ratioHeader).Append('\n');
        foreach (var (name, va, vb, ratio) in rows)
            text.Append(name.PadRight(nameWidth + 2)).Append(va.PadLeft(widthA)).Append("  ").Append(vb.PadLeft(widthB))
                .Append(ratio.Length > 0 ? "  " + ratio.PadLeft(ratioHeader.Length) : "").Append('\n');
        if (Text(sa, "n") != Text(sb, "n"))
            text.Append($"n differs ({Text(sa, "n")} and {Text(sb, "n")}): FID is biased upwards at small n, so compare FID only at equal n; KID is unbiased.\n");
        if (a.Dataset != b.Dataset)
            text.Append($"the data sets are named differently ({a.Dataset} and {b.Dataset}), but the feature net, and so the data it stands for, is the same.\n");
        return text.ToString();
    }

    private static string? Text(JsonElement? element, string key)
    {
        if (element is not { ValueKind: JsonValueKind.Object } e || !e.TryGetProperty(key, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => null,
        };
    }

    private static double? Number(JsonElement element, string key) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.GetDouble() : null;

    private static Dictionary<string, double> Classes(JsonElement samples)
    {
        var shares = new Dictionary<string, double>();
        if (samples.TryGetProperty("classes", out var classes) && classes.ValueKind == JsonValueKind.Array)
            foreach (var c in classes.EnumerateArray())
                if (c.TryGetProperty("name", out var name) && name.GetString() is { } n && Number(c, "share") is double share)
                    shares[n] = share;
        return shares;
    }

    private static string Kid(JsonElement samples) =>
        Number(samples, "kid_mean") is double mean ? $"{Format(mean, 5)} ± {Format(Number(samples, "kid_std"), 5)}" : "";

    private static string Format(double? value, int decimals) =>
        value is double v ? v.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : "";

    private static string Percent(double? share) =>
        share is double s && double.IsFinite(s) ? (s * 100).ToString("F1", CultureInfo.InvariantCulture) + "%" : "";

    /// <summary>"1.02x" for positive scores (FID, KID, ...); empty when the ratio says nothing (a zero or negative first value).</summary>
    private static string Ratio(double? a, double? b) =>
        a is double x && b is double y && x > 0 && y >= 0 ? (y / x).ToString("F2", CultureInfo.InvariantCulture) + "x" : "";
}
