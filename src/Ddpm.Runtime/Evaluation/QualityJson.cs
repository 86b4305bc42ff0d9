using System.Text;
using System.Text.Json;

namespace Ddpm.Evaluation;

/// <summary>
/// A <see cref="QualityReport"/> as JSON: snake_case keys, numbers as JSON numbers, a <c>schema_version</c>.
/// <code>
/// { "schema_version": 1, "dataset": "fashion-mnist",
///   "feature_net": { "feature_dimension": 128, "test_accuracy": 0.93, ..., "weights_sha256": "..." },
///   "reference": { "split": "test", "count": 10000 },
///   "settings": { "kid_subsets": 100, "kid_subset_size": 1000, "nearest_k": 3, "seed": 0 },
///   "context": { ... what the caller adds: checkpoint, sampler, steps ... },
///   "samples": { "n": 1000, "fid": 12.3, "kid_mean": 0.01, "kid_std": 0.001, "precision": 0.7, "recall": 0.5,
///                "class_entropy_bits": 3.2, "classes": [ { "name": "T-shirt/top", "count": 98, "share": 0.098 }, ... ] },
///   "floor": { the same keys as samples, for n real training images } }
/// </code>
/// </summary>
public static class QualityJson
{
    /// <summary>Bumped when a key is renamed or removed (adding keys does not bump it).</summary>
    public const int SchemaVersion = 1;

    /// <summary>The JSON text, indented. <paramref name="context"/> values may be strings, numbers, booleans or null.</summary>
    public static string Serialize(QualityReport report, FeatureNetInfo? featureNet = null, IEnumerable<KeyValuePair<string, object?>>? context = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("schema_version", SchemaVersion);
            json.WriteString("dataset", report.Dataset);
            json.WriteStartObject("feature_net");
            json.WriteNumber("architecture_version", Evaluation.FeatureNet.ArchitectureVersion);
            json.WriteNumber("feature_dimension", Evaluation.FeatureNet.FeatureDimension);
            json.WriteNumber("test_accuracy", report.ClassifierAccuracy);
            if (featureNet is not null)
            {
                json.WriteNumber("epochs", featureNet.Options.Epochs);
                json.WriteNumber("seed", featureNet.Options.Seed);
                json.WriteString("data_sha256", featureNet.Fingerprint);
                if (featureNet.WeightsSha256 is { } weights) json.WriteString("weights_sha256", weights);
            }
            json.WriteEndObject();
            json.WriteStartObject("reference");
            json.WriteString("split", "test");
            json.WriteNumber("count", report.ReferenceCount);
            json.WriteEndObject();
            json.WriteStartObject("settings");
            json.WriteNumber("kid_subsets", report.KidSubsets);
            json.WriteNumber("kid_subset_size", report.KidSubsetSize);
            json.WriteNumber("nearest_k", report.NearestK);
            json.WriteNumber("seed", report.Seed);
            json.WriteString("class_entropy_unit", "bits");
            json.WriteEndObject();
            if (context is not null)
            {
                json.WritePropertyName("context");
                json.WriteStartObject();
                foreach (var (key, value) in context)
                {
                    json.WritePropertyName(key);
                    JsonSerializer.Serialize(json, value, value?.GetType() ?? typeof(object));
                }
                json.WriteEndObject();
            }
            json.WritePropertyName("samples");
            WriteScores(json, report, source: "samples");
            if (report.Floor is not null)
            {
                json.WritePropertyName("floor");
                WriteScores(json, report.Floor, source: "train");
            }
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Writes <see cref="Serialize"/>'s text to <paramref name="path"/>, creating its folder.</summary>
    public static void Write(string path, QualityReport report, FeatureNetInfo? featureNet = null, IEnumerable<KeyValuePair<string, object?>>? context = null)
    {
        string text = Serialize(report, featureNet, context);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        File.WriteAllText(path, text);
    }

    private static void WriteScores(Utf8JsonWriter json, QualityReport r, string source)
    {
        json.WriteStartObject();
        json.WriteString("source", source);
        json.WriteNumber("n", r.Count);
        Number(json, "fid", r.Fid);
        Number(json, "kid_mean", r.KidMean);
        Number(json, "kid_std", r.KidStd);
        Number(json, "precision", r.Precision);
        Number(json, "recall", r.Recall);
        Number(json, "class_entropy_bits", r.ClassEntropyBits);
        json.WriteStartArray("classes");
        var shares = r.Classes.Shares;
        for (int i = 0; i < r.Classes.Counts.Count; i++)
        {
            json.WriteStartObject();
            json.WriteString("name", r.Classes.ClassNames[i]);
            json.WriteNumber("count", r.Classes.Counts[i]);
            Number(json, "share", shares[i]);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        if (r.Agreement is { } agreement)
        {
            json.WriteStartObject("requested_classes");
            Number(json, "correct_share", agreement.Overall);
            json.WriteStartArray("classes");
            var correct = agreement.Shares;
            for (int i = 0; i < agreement.Requested.Count; i++)
            {
                if (agreement.Requested[i] == 0) continue;
                json.WriteStartObject();
                json.WriteString("name", agreement.ClassNames[i]);
                json.WriteNumber("requested", agreement.Requested[i]);
                json.WriteNumber("correct", agreement.Correct[i]);
                Number(json, "correct_share", correct[i]);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    /// <summary>JSON has no NaN or infinity: those are written as null.</summary>
    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value)) json.WriteNumber(name, value);
        else json.WriteNull(name);
    }
}
