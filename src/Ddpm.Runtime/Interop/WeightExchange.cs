using System.Globalization;
using System.Text;
using Ddpm.Models;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>
/// Moves weights between Ddpm checkpoints and the files other frameworks read: <see cref="Export"/> writes a checkpoint's
/// weights as safetensors or a PyTorch state dict, <see cref="Import"/> makes a checkpoint from such a file. Generated
/// models name their tensors as the tutorial's PyTorch <c>Unet</c> does (<c>init_conv.weight</c>,
/// <c>downs.0.0.block1.proj.weight</c>, ...), so the files load into that module with <c>strict=True</c> and back.
/// </summary>
public static class WeightExchange
{
    /// <summary>safetensors metadata key: the catalog name of the model (the checkpoint settings' <c>model:</c>).</summary>
    public const string ModelKey = "ddpm.model";
    /// <summary>safetensors metadata key: the checkpoint's resolved run settings, as YAML (<see cref="Checkpoint.SpecText"/>).</summary>
    public const string ConfigKey = "ddpm.config";
    /// <summary>safetensors metadata key: which weights were exported, "EMA" or "raw".</summary>
    public const string WeightsKey = "ddpm.weights";
    /// <summary>safetensors metadata key: the optimiser steps behind the weights.</summary>
    public const string StepKey = "ddpm.step";

    /// <summary>
    /// Writes the weights of a checkpoint to <paramref name="outPath"/> in <paramref name="format"/>, and its settings text
    /// to <c>outPath.yaml</c>; safetensors files also carry the model name, settings, weights and step in their metadata.
    /// Both files are written under temporary names and moved into place (replacing files of those names).
    /// </summary>
    /// <param name="checkpointPath">A checkpoint of <c>ddpm train</c>, <see cref="DiffusionModel.Save"/> or <see cref="Import"/>.</param>
    /// <param name="outPath">The weights file to write; its folder is created.</param>
    /// <param name="format">Safetensors or a PyTorch state dict.</param>
    /// <param name="weights">Which weights: <see cref="SamplingWeights.Unknown"/> (the default) takes the ones
    /// <see cref="DiffusionModel.Load"/> would, else EMA or raw as named.</param>
    /// <exception cref="CheckpointException">The checkpoint cannot be read, or has no EMA weights and EMA was asked for.</exception>
    public static ExportResult Export(string checkpointPath, string outPath, WeightFormat format, SamplingWeights weights = SamplingWeights.Unknown)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        ArgumentException.ThrowIfNullOrEmpty(outPath);
        using var checkpoint = Checkpoint.Load(checkpointPath);
        var (state, chosen, why) = checkpoint.SamplingState(weights);
        string model = RunConfig.ModelName(checkpoint.SpecText) ?? "";
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt", // what Hugging Face's loaders expect of a PyTorch-layout safetensors file
            [ModelKey] = model,
            [WeightsKey] = chosen,
            [StepKey] = checkpoint.Step.ToString(CultureInfo.InvariantCulture),
            [ConfigKey] = checkpoint.SpecText,
        };
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        WeightFile.Write(outPath, format, state, metadata);
        string settingsPath = outPath + ".yaml";
        AtomicFile.WriteText(settingsPath, checkpoint.SpecText);
        return new ExportResult(model, chosen, why, checkpoint.Step, state.Count, state.Sum(p => p.Value.NumberOfElements), outPath, settingsPath);
    }

    /// <summary>
    /// Makes a Ddpm checkpoint of <paramref name="entry"/> from weights trained elsewhere, which <see cref="DiffusionModel.Load"/>,
    /// <c>ddpm sample</c> and <c>ddpm eval</c> read: the file's tensors as the raw weights (no EMA), step 0, a fresh optimiser
    /// state, and the model's declared training settings as the run settings. Every key, shape and dtype is checked first;
    /// floating-point tensors of another precision are converted to the model's. The checkpoint is written under a
    /// temporary name in the same folder and moved into place.
    /// </summary>
    /// <param name="weightsPath">A .safetensors, .pt, .pth or .bin state dict with the tutorial's keys.</param>
    /// <param name="entry">The catalog model the weights belong to.</param>
    /// <param name="checkpointPath">The checkpoint to write; its folder is created.</param>
    /// <param name="overwrite">Replace an existing <paramref name="checkpointPath"/>; without it an existing file is an error.</param>
    /// <exception cref="StateDictMismatchException">Keys are missing or unexpected, or shapes or dtypes differ (all are listed).</exception>
    /// <exception cref="InvalidDataException">The weights file cannot be parsed.</exception>
    /// <exception cref="IOException"><paramref name="checkpointPath"/> exists and <paramref name="overwrite"/> is false.</exception>
    public static ImportResult Import(string weightsPath, ModelEntry entry, string checkpointPath, bool overwrite = false)
        => ImportStripping(weightsPath, entry, checkpointPath, overwrite, stripPrefix: null);

    /// <summary>As the public <c>Import</c>; <paramref name="stripPrefix"/> (e.g. "module.", which DataParallel adds) is removed from every key that starts with it first.</summary>
    internal static ImportResult ImportStripping(string weightsPath, ModelEntry entry, string checkpointPath, bool overwrite, string? stripPrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(weightsPath);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        if (!overwrite && File.Exists(checkpointPath))
            throw new IOException($"'{checkpointPath}' exists; it is not replaced unless asked to.");

        using var file = WeightFile.Read(weightsPath);
        using var model = entry.CreateModel();
        var expected = model.state_dict().Select(p => (p.Key, p.Value)).ToList();
        var named = string.IsNullOrEmpty(stripPrefix) ? file.Tensors
            : file.Tensors.Select(p => (p.Name.StartsWith(stripPrefix, StringComparison.Ordinal) ? p.Name[stripPrefix.Length..] : p.Name, p.Value)).ToList();
        Check(file.Source, named, expected, entry.Name);
        if (FiniteWeights.FirstNonFinite(named) is { } bad)
            throw new InvalidDataException($"{weightsPath}: {FiniteWeights.Describe(bad)}; ddpm imports finite weights only (the model that saved them diverged).");

        var byName = named.ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal);
        int converted = 0;
        var state = new List<(string Name, Tensor Value)>(expected.Count);
        Tensor? rng = null;
        Checkpoint? checkpoint = null;
        try
        {
            foreach (var (name, target) in expected)
            {
                var stored = byName[name];
                if (stored.dtype != target.dtype) converted++;
                state.Add((name, stored.to(target.dtype).contiguous().clone().DetachFromDisposeScope()));
            }
            byte[] optimizerState = FreshOptimizerState(model, entry.Training);
            using (var generator = new Generator(unchecked((ulong)entry.Training.Seed), CPU))
                rng = generator.get_state().DetachFromDisposeScope();
            string settings = $"# Imported by ddpm import from {Path.GetFileName(weightsPath)}: the model's declared training settings, step 0, no EMA.\n" +
                              RunConfig.Write(entry, entry.Training, "cpu", "imported").Split('\n', 2)[1];
            checkpoint = new Checkpoint(0, 0, 0, entry.Schedule.Fingerprint, settings, state, null, optimizerState, rng, get_num_threads());
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!);
            SaveAtomically(checkpoint, checkpointPath, overwrite);
        }
        finally
        {
            // The checkpoint owns the state and generator tensors once made.
            if (checkpoint is not null) checkpoint.Dispose();
            else
            {
                foreach (var (_, value) in state) value.Dispose();
                rng?.Dispose();
            }
        }
        return new ImportResult(entry.Name, file.Format, expected.Count, expected.Sum(p => p.Value.NumberOfElements), converted, checkpointPath);
    }

    /// <summary>
    /// Compares a state dict with the one <paramref name="expected"/> describes, throwing one exception that lists every
    /// missing, unexpected and mismatched key.
    /// </summary>
    private static void Check(string source, IReadOnlyList<(string Name, Tensor Value)> tensors, IReadOnlyList<(string Name, Tensor Value)> expected, string modelName)
    {
        var stored = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, value) in tensors) stored[name] = value;
        // A wrapper's prefix on every key (DataParallel's "module.") matches nothing: say so in one line instead of listing every key.
        if (tensors.Count > 0 && !expected.Any(p => stored.ContainsKey(p.Name)) && tensors[0].Name.IndexOf('.') is int dot and > 0)
        {
            string prefix = tensors[0].Name[..(dot + 1)];
            if (tensors.All(p => p.Name.StartsWith(prefix, StringComparison.Ordinal)) && expected.Any(p => stored.ContainsKey(prefix + p.Name)))
                throw new InvalidDataException($"{source}: every key starts with '{prefix}': strip it with --strip-prefix {prefix}");
        }
        var wanted = expected.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = new List<string>();
        var mismatched = new List<string>();
        foreach (var (name, target) in expected)
        {
            if (!stored.TryGetValue(name, out var value))
                missing.Add($"{name} {Shape(target)}");
            else if (!value.shape.SequenceEqual(target.shape))
                mismatched.Add($"{name} is {Shape(value)} in the file, {Shape(target)} in the model");
            else if (value.dtype != target.dtype && !(value.is_floating_point() && target.is_floating_point()))
                mismatched.Add($"{name} is {value.dtype} in the file, {target.dtype} in the model");
        }
        var unexpected = tensors.Where(p => !wanted.Contains(p.Name)).Select(p => $"{p.Name} {Shape(p.Value)}").ToList();
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
            throw new StateDictMismatchException(source, modelName, Sorted(missing), Sorted(unexpected), Sorted(mismatched));
    }

    private static List<string> Sorted(List<string> items)
    {
        items.Sort(StringComparer.Ordinal);
        return items;
    }

    internal static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";

    /// <summary>The bytes of a new Adam optimiser over <paramref name="model"/>, as the trainer builds it (no steps taken).</summary>
    private static byte[] FreshOptimizerState(nn.Module model, Ddpm.Specs.TrainingSpec training)
    {
        var o = training.Optimizer;
        using var optimizer = optim.Adam(model.parameters(), o.Lr, o.Beta1, o.Beta2, Trainer.AdamEpsilon, o.WeightDecay);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            optimizer.save_state_dict(writer);
        return stream.ToArray();
    }

    private static void SaveAtomically(Checkpoint checkpoint, string path, bool overwrite)
    {
        string full = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            checkpoint.Save(temporary); // itself written to temporary.tmp, flushed, then renamed
            File.Move(temporary, full, overwrite);
        }
        finally
        {
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

/// <summary>What <see cref="WeightExchange.Export"/> wrote.</summary>
/// <param name="Model">The model's catalog name, as the checkpoint's settings record it ("" if they do not).</param>
/// <param name="Weights">"EMA" or "raw".</param>
/// <param name="WeightsReason">Why those weights (as asked, or what the run's evaluation found).</param>
/// <param name="Step">The optimiser steps behind the weights.</param>
/// <param name="Tensors">Tensors written.</param>
/// <param name="Values">Numbers written (all tensors' elements).</param>
/// <param name="WeightsPath">The weights file.</param>
/// <param name="SettingsPath">The settings file beside it (<c>WeightsPath.yaml</c>).</param>
public sealed record ExportResult(string Model, string Weights, string WeightsReason, long Step, int Tensors, long Values, string WeightsPath, string SettingsPath);

/// <summary>What <see cref="WeightExchange.Import"/> wrote.</summary>
/// <param name="Model">The catalog model the checkpoint holds.</param>
/// <param name="Format">The format the weights were read from.</param>
/// <param name="Tensors">Tensors imported (every tensor of the model's state dict).</param>
/// <param name="Values">Numbers imported.</param>
/// <param name="ConvertedTensors">Tensors converted from another floating-point precision to the model's.</param>
/// <param name="CheckpointPath">The checkpoint written.</param>
public sealed record ImportResult(string Model, WeightFormat Format, int Tensors, long Values, int ConvertedTensors, string CheckpointPath);

/// <summary>
/// A weights file does not fit a model: keys are missing or unexpected, or shapes or dtypes differ. The message lists every
/// one of them, sorted, on one line.
/// </summary>
public sealed class StateDictMismatchException : Exception
{
    /// <summary>Creates the exception; the lists are shown in the message in the order given.</summary>
    /// <param name="source">The weights file.</param>
    /// <param name="model">The model it was checked against.</param>
    /// <param name="missing">The model's keys the file lacks, each with its shape ("final_conv.bias [1]").</param>
    /// <param name="unexpected">The file's keys the model lacks, each with its shape.</param>
    /// <param name="mismatched">The keys of both whose shape or dtype differs, each saying how.</param>
    public StateDictMismatchException(string source, string model, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
        : base(Describe(source, model, missing, unexpected, mismatched))
    {
        WeightsPath = source;
        Model = model;
        Missing = missing;
        Unexpected = unexpected;
        Mismatched = mismatched;
    }

    /// <summary>The weights file.</summary>
    public string WeightsPath { get; }
    /// <summary>The model the file was checked against.</summary>
    public string Model { get; }
    /// <summary>The model's keys the file lacks, with their shapes.</summary>
    public IReadOnlyList<string> Missing { get; }
    /// <summary>The file's keys the model lacks, with their shapes.</summary>
    public IReadOnlyList<string> Unexpected { get; }
    /// <summary>Keys of both whose shape or dtype differs, each saying how.</summary>
    public IReadOnlyList<string> Mismatched { get; }

    private static string Describe(string source, string model, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
    {
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"{Count(missing.Count, "missing key")}: {string.Join(", ", missing)}");
        if (unexpected.Count > 0) parts.Add($"{Count(unexpected.Count, "unexpected key")}: {string.Join(", ", unexpected)}");
        if (mismatched.Count > 0) parts.Add($"{Count(mismatched.Count, "mis-shaped key")}: {string.Join("; ", mismatched)}");
        return $"{source} does not fit {model}: {string.Join("; ", parts)}.";
    }

    private static string Count(int n, string what) => n == 1 ? $"1 {what}" : $"{n} {what}s";
}
