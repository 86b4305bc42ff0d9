using System.Text.Json;
using Ddpm.Evaluation;
using Ddpm.Runtime.Tests.Data;

namespace Ddpm.Runtime.Tests.Evaluation;

public class QualityJsonTests
{
    internal static QualityReport Report(QualityReport? floor = null, double fid = 12.5) => new(
        Dataset: "fashion-mnist", Count: 4, Fid: fid, KidMean: 0.0125, KidStd: 0.5, Precision: 0.75, Recall: 0.25,
        Classes: ClassHistogram.FromLabels([0, 1, 1, 1], ["T-shirt/top", "Trouser"]), ClassifierAccuracy: 0.9375,
        ReferenceCount: 10000, KidSubsets: 100, KidSubsetSize: 4, NearestK: 3, Seed: 7, Floor: floor);

    private static readonly FeatureNetInfo Info = new("fashion-mnist", "ab12", 1, 1, 28, ["T-shirt/top", "Trouser"],
        new FeatureNetOptions(Epochs: 4, Seed: 9), 0.9375, 60, 2);

    private static string[] Keys(JsonElement e) => e.EnumerateObject().Select(p => p.Name).ToArray();

    private static readonly string[] ScoreKeys = ["source", "n", "fid", "kid_mean", "kid_std", "precision", "recall", "class_entropy_bits", "classes"];

    [Fact]
    public void Writes_exactly_the_documented_keys_and_values()
    {
        var floor = Report(fid: 2.25) with { Count = 4 };
        var context = new Dictionary<string, object?> { ["checkpoint"] = "run/ckpt.bin", ["steps"] = 50, ["ema"] = true, ["note"] = null };
        string text = QualityJson.Serialize(Report(floor), Info, context);
        Assert.EndsWith("}\n", text);

        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        Assert.Equal(["schema_version", "dataset", "feature_net", "reference", "settings", "context", "samples", "floor"], Keys(root));
        Assert.Equal(1, root.GetProperty("schema_version").GetInt32());
        Assert.Equal("fashion-mnist", root.GetProperty("dataset").GetString());

        var net = root.GetProperty("feature_net");
        Assert.Equal(["architecture_version", "feature_dimension", "test_accuracy", "epochs", "seed", "data_sha256"], Keys(net));
        Assert.Equal((1, 128, 0.9375, 4, 9L, "ab12"),
            (net.GetProperty("architecture_version").GetInt32(), net.GetProperty("feature_dimension").GetInt32(),
             net.GetProperty("test_accuracy").GetDouble(), net.GetProperty("epochs").GetInt32(), net.GetProperty("seed").GetInt64(),
             net.GetProperty("data_sha256").GetString()));

        // The net's weights hash is written when the description has one.
        using (var named = JsonDocument.Parse(QualityJson.Serialize(Report(), Info with { WeightsSha256 = "0f1e" })))
        {
            var namedNet = named.RootElement.GetProperty("feature_net");
            Assert.Equal(["architecture_version", "feature_dimension", "test_accuracy", "epochs", "seed", "data_sha256", "weights_sha256"], Keys(namedNet));
            Assert.Equal("0f1e", namedNet.GetProperty("weights_sha256").GetString());
        }

        var reference = root.GetProperty("reference");
        Assert.Equal(["split", "count"], Keys(reference));
        Assert.Equal(("test", 10000), (reference.GetProperty("split").GetString(), reference.GetProperty("count").GetInt32()));

        var settings = root.GetProperty("settings");
        Assert.Equal(["kid_subsets", "kid_subset_size", "nearest_k", "seed", "class_entropy_unit"], Keys(settings));
        Assert.Equal((100, 4, 3, 7, "bits"),
            (settings.GetProperty("kid_subsets").GetInt32(), settings.GetProperty("kid_subset_size").GetInt32(),
             settings.GetProperty("nearest_k").GetInt32(), settings.GetProperty("seed").GetInt32(), settings.GetProperty("class_entropy_unit").GetString()));

        var ctx = root.GetProperty("context");
        Assert.Equal(["checkpoint", "steps", "ema", "note"], Keys(ctx));
        Assert.Equal("run/ckpt.bin", ctx.GetProperty("checkpoint").GetString());
        Assert.Equal(50, ctx.GetProperty("steps").GetInt32());
        Assert.Equal(JsonValueKind.True, ctx.GetProperty("ema").ValueKind);
        Assert.Equal(JsonValueKind.Null, ctx.GetProperty("note").ValueKind);

        var samples = root.GetProperty("samples");
        Assert.Equal(ScoreKeys, Keys(samples));
        Assert.Equal(("samples", 4, 12.5, 0.0125, 0.5, 0.75, 0.25),
            (samples.GetProperty("source").GetString(), samples.GetProperty("n").GetInt32(), samples.GetProperty("fid").GetDouble(),
             samples.GetProperty("kid_mean").GetDouble(), samples.GetProperty("kid_std").GetDouble(),
             samples.GetProperty("precision").GetDouble(), samples.GetProperty("recall").GetDouble()));
        Assert.Equal(0.8112781244591328, samples.GetProperty("class_entropy_bits").GetDouble(), 1e-15);
        var classes = samples.GetProperty("classes").EnumerateArray().ToArray();
        Assert.Equal(2, classes.Length);
        Assert.All(classes, c => Assert.Equal(["name", "count", "share"], Keys(c)));
        Assert.Equal(("T-shirt/top", 1, 0.25), (classes[0].GetProperty("name").GetString(), classes[0].GetProperty("count").GetInt32(), classes[0].GetProperty("share").GetDouble()));
        Assert.Equal(("Trouser", 3, 0.75), (classes[1].GetProperty("name").GetString(), classes[1].GetProperty("count").GetInt32(), classes[1].GetProperty("share").GetDouble()));

        var floorJson = root.GetProperty("floor");
        Assert.Equal(ScoreKeys, Keys(floorJson));
        Assert.Equal("train", floorJson.GetProperty("source").GetString());
        Assert.Equal(2.25, floorJson.GetProperty("fid").GetDouble());
    }

    [Fact]
    public void Without_feature_net_context_or_floor_those_keys_are_absent()
    {
        using var doc = JsonDocument.Parse(QualityJson.Serialize(Report()));
        var root = doc.RootElement;
        Assert.Equal(["schema_version", "dataset", "feature_net", "reference", "settings", "samples"], Keys(root));
        Assert.Equal(["architecture_version", "feature_dimension", "test_accuracy"], Keys(root.GetProperty("feature_net")));
    }

    [Fact]
    public void Non_finite_scores_are_written_as_null()
    {
        var report = Report(fid: double.NaN) with { KidMean = double.PositiveInfinity };
        using var doc = JsonDocument.Parse(QualityJson.Serialize(report));
        var samples = doc.RootElement.GetProperty("samples");
        Assert.Equal(JsonValueKind.Null, samples.GetProperty("fid").ValueKind);
        Assert.Equal(JsonValueKind.Null, samples.GetProperty("kid_mean").ValueKind);
        Assert.Equal(0.5, samples.GetProperty("kid_std").GetDouble());
    }

    [Fact]
    public void Write_creates_the_folder_and_writes_the_serialized_text()
    {
        using var dir = new TempFolder();
        string path = dir.File("a/b/quality.json");
        QualityJson.Write(path, Report(), Info);
        Assert.Equal(QualityJson.Serialize(Report(), Info), File.ReadAllText(path));
    }
}

public class QualityTableTests
{
    [Fact]
    public void Table_lists_each_score_beside_its_floor()
    {
        var floor = QualityJsonTests.Report(fid: 2.25) with { Precision = 0.5, Classes = ClassHistogram.FromLabels([0, 0, 1, 1], ["T-shirt/top", "Trouser"]) };
        var lines = QualityTable.Render(QualityJsonTests.Report(floor)).Split('\n');

        Assert.Equal("Sample quality against fashion-mnist: 10,000 test images as the reference", lines[0]);
        Assert.Equal("feature net: 128-d penultimate layer of a classifier with test accuracy 93.75%", lines[1]);
        Assert.Equal(["samples", "floor", "(real", "train)"], lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        string[] Cells(string prefix) => lines.Single(l => l.StartsWith(prefix))[prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["4", "4"], Cells("n "));
        Assert.Equal(["12.500", "2.250"], Cells("FID (lower is better)"));
        Assert.Equal(["0.01250", "±", "0.50000", "0.01250", "±", "0.50000"], Cells("KID (mean ± std)"));
        Assert.Equal(["0.750", "0.500"], Cells("precision (k=3)"));
        Assert.Equal(["0.250", "0.250"], Cells("recall (k=3)"));
        Assert.Equal(["0.811", "1.000"], Cells("class entropy, bits (max 1.000)"));
        Assert.Equal(["25.0%", "50.0%"], Cells("  T-shirt/top"));
        Assert.Equal(["75.0%", "50.0%"], Cells("  Trouser"));
        Assert.Equal("KID over 100 subsets of 4 (seed 7); the floor is 4 real training images against the same reference.", lines[^2]);
        Assert.Equal("", lines[^1]);
        // Columns line up: every score row is as long as the header row.
        Assert.All(lines[2..^2], l => Assert.Equal(lines[2].Length, l.Length));
    }

    [Fact]
    public void Without_a_floor_there_is_no_floor_column_and_the_title_can_be_replaced()
    {
        var lines = QualityTable.Render(QualityJsonTests.Report(), title: "My title").Split('\n');
        Assert.Equal("My title", lines[0]);
        Assert.DoesNotContain(lines, l => l.Contains("floor (real train)"));
        Assert.Equal(["12.500"], lines.Single(l => l.StartsWith("FID"))["FID (lower is better)".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }
}
