using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Ddpm.Evaluation;

/// <summary>
/// What a feature-net file is, written beside it as JSON (<c>fashion-mnist.fnet</c> and <c>fashion-mnist.json</c>): the data
/// set it was trained on, the SHA-256 of the file, the SHA-256 of its weights (the net's name in every score), its test
/// accuracy and the command that made it. The nets shipped with Ddpm.Runtime (<see cref="FeatureNetCatalog.Shipped"/>) are
/// such pairs, and every load checks the file against its manifest.
/// </summary>
/// <remarks>
/// <code>
/// { "schema_version": 1, "dataset": "fashion-mnist", "file": "fashion-mnist.fnet", "bytes": 1138517,
///   "sha256": "...", "weights_sha256": "...", "data_sha256": "...", "architecture_version": 1,
///   "test_accuracy": 0.9296, "options": { "epochs": 4, "batch_size": 128, "learning_rate": 0.002, "seed": 0 },
///   "torch_threads": 2, "train_seconds": 370.1, "torchsharp": "0.107.0",
///   "command": "ddpm eval --train-feature-net --dataset fashion-mnist --seed 0 --out ..." }
/// </code>
/// </remarks>
/// <param name="Dataset">The data set's name as it was asked for (fashion-mnist).</param>
/// <param name="File">The feature-net file's name, in the manifest's folder.</param>
/// <param name="Bytes">The file's length.</param>
/// <param name="Sha256">SHA-256 of the whole file (lowercase hex): what a load verifies.</param>
/// <param name="WeightsSha256">SHA-256 of the net's saved weights (<see cref="FeatureNetInfo.WeightsSha256"/>): the net's name.</param>
/// <param name="DataSha256">The data set's fingerprint (<see cref="LabelledDataset.Fingerprint"/>): the data the net stands for.</param>
/// <param name="ArchitectureVersion">The <see cref="FeatureNet.ArchitectureVersion"/> it was built with.</param>
/// <param name="TestAccuracy">Its accuracy on the data set's test split, in [0, 1].</param>
/// <param name="Options">How it was trained.</param>
/// <param name="TorchThreads">torch's thread count while it trained (bit-reproducibility needs the same).</param>
/// <param name="TrainSeconds">How long the training took.</param>
/// <param name="TorchSharp">The TorchSharp version it was trained with.</param>
/// <param name="Command">The command that made it.</param>
internal sealed record FeatureNetManifest(
    string Dataset,
    string File,
    long Bytes,
    string Sha256,
    string WeightsSha256,
    string DataSha256,
    int ArchitectureVersion,
    double TestAccuracy,
    FeatureNetOptions Options,
    int TorchThreads,
    double TrainSeconds,
    string TorchSharp,
    string Command)
{
    /// <summary>Bumped when a key is renamed or removed.</summary>
    public const int SchemaVersion = 1;

    /// <summary>The extension of feature-net files that are described by a manifest.</summary>
    public const string NetExtension = ".fnet";

    /// <summary>The manifest's file name for a net file: the same name with <c>.json</c>.</summary>
    public static string PathFor(string netPath) => System.IO.Path.ChangeExtension(netPath, ".json");

    /// <summary>The manifest of the net file at <paramref name="netPath"/>, written with <paramref name="info"/> by <paramref name="command"/>.</summary>
    public static FeatureNetManifest Describe(string netPath, FeatureNetInfo info, string command)
    {
        ArgumentNullException.ThrowIfNull(info);
        byte[] bytes = System.IO.File.ReadAllBytes(netPath);
        return new FeatureNetManifest(info.Dataset, System.IO.Path.GetFileName(netPath), bytes.LongLength, Sha256Of(bytes),
                                      info.WeightsSha256 ?? throw new ArgumentException("The net's weights SHA-256 is not known.", nameof(info)),
                                      info.Fingerprint, info.ArchitectureVersion, info.TestAccuracy, info.Options, info.TorchThreads,
                                      Math.Round(info.TrainSeconds, 1), TorchSharpVersion, command);
    }

    /// <summary>SHA-256 of <paramref name="bytes"/>, lowercase hex.</summary>
    public static string Sha256Of(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The TorchSharp version of this build, as a manifest records it.</summary>
    public static string TorchSharpVersion =>
        typeof(TorchSharp.torch).Assembly.GetName().Version is { } v ? $"{v.Major}.{v.Minor}.{v.Build}" : "unknown";

    /// <summary>The manifest as indented JSON with snake_case keys.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("schema_version", SchemaVersion);
            json.WriteString("dataset", Dataset);
            json.WriteString("file", File);
            json.WriteNumber("bytes", Bytes);
            json.WriteString("sha256", Sha256);
            json.WriteString("weights_sha256", WeightsSha256);
            json.WriteString("data_sha256", DataSha256);
            json.WriteNumber("architecture_version", ArchitectureVersion);
            json.WriteNumber("test_accuracy", TestAccuracy);
            json.WriteStartObject("options");
            json.WriteNumber("epochs", Options.Epochs);
            json.WriteNumber("batch_size", Options.BatchSize);
            json.WriteNumber("learning_rate", Options.LearningRate);
            json.WriteNumber("seed", Options.Seed);
            json.WriteEndObject();
            json.WriteNumber("torch_threads", TorchThreads);
            json.WriteNumber("train_seconds", TrainSeconds);
            json.WriteString("torchsharp", TorchSharp);
            json.WriteString("command", Command);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>.</summary>
    public void Write(string path) => System.IO.File.WriteAllText(path, ToJson());

    /// <summary>Reads a manifest; a missing key, a wrong type or an unknown schema is an <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    public static FeatureNetManifest Parse(string text, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            int schema = root.GetProperty("schema_version").GetInt32();
            if (schema != SchemaVersion)
                throw new InvalidDataException($"schema version {schema}, this build reads {SchemaVersion}");
            var options = root.GetProperty("options");
            var manifest = new FeatureNetManifest(
                String(root, "dataset"), String(root, "file"), root.GetProperty("bytes").GetInt64(),
                Hex(root, "sha256"), Hex(root, "weights_sha256"), Hex(root, "data_sha256"),
                root.GetProperty("architecture_version").GetInt32(), root.GetProperty("test_accuracy").GetDouble(),
                new FeatureNetOptions(options.GetProperty("epochs").GetInt32(), options.GetProperty("batch_size").GetInt32(),
                                      options.GetProperty("learning_rate").GetDouble(), options.GetProperty("seed").GetInt64()),
                root.GetProperty("torch_threads").GetInt32(), root.GetProperty("train_seconds").GetDouble(),
                String(root, "torchsharp"), String(root, "command"));
            if (manifest.File != System.IO.Path.GetFileName(manifest.File) || !manifest.File.EndsWith(NetExtension, StringComparison.Ordinal))
                throw new InvalidDataException($"\"file\" must be a file name ending in {NetExtension}, got '{manifest.File}'");
            return manifest;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new InvalidDataException($"{source} is not a feature-net manifest: {e.Message}", e);
        }
    }

    private static string String(JsonElement root, string key) =>
        root.GetProperty(key).GetString() is { Length: > 0 } value ? value : throw new InvalidDataException($"\"{key}\" is empty");

    private static string Hex(JsonElement root, string key)
    {
        string value = String(root, key);
        if (value.Length != 64 || !value.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
            throw new InvalidDataException($"\"{key}\" is not a lowercase SHA-256: '{value}'");
        return value;
    }

    /// <summary>"92.96%" for messages.</summary>
    public string AccuracyText => (TestAccuracy * 100).ToString("F2", CultureInfo.InvariantCulture) + "%";
}
