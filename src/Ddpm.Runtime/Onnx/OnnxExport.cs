using System.Globalization;
using Ddpm.Models;
using Ddpm.Onnx;
using Ddpm.Schedules;
using Ddpm.Specs;
using Ddpm.Training;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>
/// Writes a generated U-Net as an ONNX model that ONNX Runtime runs without libtorch: inputs <c>images</c>
/// [batch, C, H, W] float32 and <c>timesteps</c> [batch] int64 (batch is dynamic), and for a class-conditional model
/// <c>labels</c> [batch] int64 (its classes, and the null class for the unconditional prediction that guidance needs),
/// output <c>prediction</c> [batch, C, H, W] (what the model's objective predicts). The schedule's tables, the objective, the image shape and the model's name and
/// run settings go into the model's <c>metadata_props</c>, so a sampler (Ddpm.Onnx) needs nothing but the file.
/// </summary>
public static class OnnxExport
{
    /// <summary>The ONNX opset the graph is written for (ai.onnx 17: every operator used is in it).</summary>
    public const int Opset = 17;
    /// <summary>The ONNX IR version of the file (8 goes with opset 17).</summary>
    public const int IrVersion = 8;

    /// <summary>
    /// Exports the weights of a checkpoint (the ones <c>ddpm sample</c> would use, unless <paramref name="weights"/> names
    /// EMA or raw) as <paramref name="outPath"/>, written under a temporary name and moved into place.
    /// </summary>
    /// <param name="checkpointPath">A checkpoint of <c>ddpm train</c>, <c>ddpm import</c> or <see cref="DiffusionModel.Save"/>.</param>
    /// <param name="outPath">The .onnx file to write; its folder is created; an existing file is replaced.</param>
    /// <param name="weights">Which weights; <see cref="SamplingWeights.Unknown"/> takes the ones <see cref="DiffusionModel.Load"/> would.</param>
    /// <exception cref="CheckpointException">The file is not a readable checkpoint, its model is not compiled into the program,
    /// its schedule differs from the compiled one, or it has no EMA weights and EMA was asked for.</exception>
    public static OnnxExportResult Export(string checkpointPath, string outPath, SamplingWeights weights = SamplingWeights.Unknown)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        ArgumentException.ThrowIfNullOrEmpty(outPath);
        using var checkpoint = Checkpoint.Load(checkpointPath);
        string name = RunConfig.ModelName(checkpoint.SpecText)
            ?? throw new CheckpointException(checkpointPath, "does not say which model it holds (no 'model:' in its settings).");
        var entry = ModelCatalog.Find(name)
            ?? throw new CheckpointException(checkpointPath, $"holds a {name}, which is not compiled into this program. Compiled models: {ModelCatalog.Describe()}.");
        checkpoint.CheckSchedule(entry.Schedule.Fingerprint);
        var (state, chosen, why) = checkpoint.SamplingState(weights);
        using var model = entry.CreateModel();
        checkpoint.CopyInto(chosen, state, model);
        var provenance = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [OnnxMetadata.WeightsKey] = chosen,
            [OnnxMetadata.StepKey] = checkpoint.Step.ToString(CultureInfo.InvariantCulture),
            [OnnxMetadata.ConfigKey] = checkpoint.SpecText,
        };
        if (entry.Conditioning is not null) // the names the training data had, kept in the checkpoint
            provenance[OnnxMetadata.ClassNamesKey] = ClassNamesJson(DiffusionModel.NamesOfClasses(
                entry.Conditioning, checkpoint.ClassNames, RunConfig.Read(checkpoint.SpecText).Dataset ?? entry.Training.Dataset));
        long bytes = Write(model, entry, outPath, provenance);
        return new OnnxExportResult(entry.Name, chosen, why, checkpoint.Step, bytes, outPath);
    }

    /// <summary>
    /// Exports <paramref name="model"/> (a module of <paramref name="entry"/>, as <see cref="ModelEntry.CreateModel"/> makes
    /// it, with any weights) with the metadata of <paramref name="entry"/> and <paramref name="extraMetadata"/>.
    /// </summary>
    /// <returns>The size of the file written, in bytes.</returns>
    /// <exception cref="NotSupportedException">The module is not a U-Net made by Ddpm's generator.</exception>
    public static long Write(nn.Module<Tensor, Tensor, Tensor> model, ModelEntry entry, string outPath,
                             IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentException.ThrowIfNullOrEmpty(outPath);
        var proto = Build(model, entry, extraMetadata);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        AtomicFile.Write(outPath, stream => proto.WriteTo(stream));
        return new FileInfo(outPath).Length;
    }

    /// <summary>The ONNX model in memory (what <see cref="Write"/> saves).</summary>
    internal static ModelProto Build(nn.Module<Tensor, Tensor, Tensor> model, ModelEntry entry, IReadOnlyDictionary<string, string>? extraMetadata)
    {
        if ((model is Ddpm.Conditioning.IClassConditional) != (entry.Conditioning is not null))
            throw new ArgumentException($"The module is a {model.GetType().Name}, which does not match {entry.Name} (one is class-conditional, the other not).", nameof(model));
        var builder = new OnnxGraphBuilder();
        string prediction;
        using (no_grad())
        using (var scope = NewDisposeScope())
            prediction = UNetGraph.Build(builder, model, entry.ImageSize);
        var graph = builder.Graph;
        graph.Name = entry.Name;
        builder.Output(prediction, OnnxMetadata.PredictionOutput);
        const string batch = "batch";
        graph.Input.Add(OnnxGraphBuilder.Value(OnnxMetadata.ImagesInput, TensorProto.Types.DataType.Float, batch, entry.Channels, entry.ImageSize, entry.ImageSize));
        graph.Input.Add(OnnxGraphBuilder.Value(OnnxMetadata.TimestepsInput, TensorProto.Types.DataType.Int64, batch));
        if (entry.Conditioning is not null)
            graph.Input.Add(OnnxGraphBuilder.Value(OnnxMetadata.LabelsInput, TensorProto.Types.DataType.Int64, batch));
        graph.Output.Add(OnnxGraphBuilder.Value(OnnxMetadata.PredictionOutput, TensorProto.Types.DataType.Float, batch, entry.Channels, entry.ImageSize, entry.ImageSize));

        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Ddpm",
            ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "",
            DocString = $"{entry.Name} ({entry.SpecFile}): images [batch, {entry.Channels}, {entry.ImageSize}, {entry.ImageSize}] and timesteps [batch] " +
                        (entry.Conditioning is { } c ? $"and labels [batch] (0 .. {c.Classes}, {c.Classes} = the null class) " : "") +
                        $"to the predicted {Spelling(entry.Diffusion.Options.Objective)}. Exported by Ddpm.",
            Graph = graph,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        // Extra entries (a checkpoint's class names, provenance) take the place of the entry's own.
        var metadata = Metadata(entry).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        foreach (var (key, value) in extraMetadata ?? new Dictionary<string, string>()) metadata[key] = value;
        foreach (var (key, value) in metadata)
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return proto;
    }

    /// <summary>The metadata every export carries: the model, the image shape, the schedule and the objective.</summary>
    internal static IEnumerable<KeyValuePair<string, string>> Metadata(ModelEntry entry)
    {
        static KeyValuePair<string, string> P(string key, string value) => new(key, value);
        var tables = entry.Schedule;
        var options = entry.Diffusion.Options;
        yield return P(OnnxMetadata.FormatKey, OnnxMetadata.FormatValue);
        yield return P(OnnxMetadata.ModelKey, entry.Name);
        yield return P(OnnxMetadata.SpecFileKey, entry.SpecFile);
        yield return P(OnnxMetadata.ArchitectureHashKey, entry.ArchitectureHash);
        yield return P(OnnxMetadata.ChannelsKey, entry.Channels.ToString(CultureInfo.InvariantCulture));
        yield return P(OnnxMetadata.ImageSizeKey, entry.ImageSize.ToString(CultureInfo.InvariantCulture));
        yield return P(OnnxMetadata.ScheduleKindKey, ScheduleKindOf(tables));
        yield return P(OnnxMetadata.TimestepsKey, tables.Timesteps.ToString(CultureInfo.InvariantCulture));
        yield return P(OnnxMetadata.FingerprintKey, tables.Fingerprint);
        yield return P(OnnxMetadata.BetasKey, OnnxMetadata.Format(tables.Betas));
        yield return P(OnnxMetadata.AlphasCumprodKey, OnnxMetadata.Format(tables.AlphasCumprod));
        yield return P(OnnxMetadata.ObjectiveKey, Spelling(options.Objective));
        yield return P(OnnxMetadata.ClipX0Key, options.ClipX0 ? "true" : "false");
        yield return P(OnnxMetadata.DynamicThresholdKey, OnnxMetadata.Format(options.DynamicThreshold));
        if (entry.Conditioning is { } conditioning)
        {
            yield return P(OnnxMetadata.ClassesKey, conditioning.Classes.ToString(CultureInfo.InvariantCulture));
            yield return P(OnnxMetadata.ClassDropoutKey, OnnxMetadata.Format(conditioning.Dropout));
            yield return P(OnnxMetadata.GuidanceKey, OnnxMetadata.Format(conditioning.Guidance));
            yield return P(OnnxMetadata.ClassNamesKey, ClassNamesJson(DiffusionModel.NamesOfClasses(conditioning, null, entry.Training.Dataset)));
        }
    }

    private static string ClassNamesJson(IReadOnlyList<string> names) => System.Text.Json.JsonSerializer.Serialize(names);

    private static string Spelling(Objective objective) => SpecYaml.Spelling(objective);

    /// <summary>
    /// The schedule's kind, as the spec spells it: the closed form that reproduces the betas (to 1e-12 relative) from the
    /// range they imply (the first and last beta; for the sigmoid, the range its end points were scaled from), else
    /// "custom". The catalog keeps the tables, not the declaration, so the kind is recognised rather than read.
    /// </summary>
    internal static string ScheduleKindOf(ScheduleTables tables)
    {
        double[] betas = tables.Betas;
        double first = betas[0], last = betas[^1];
        double low = 1 / (1 + Math.Exp(6)), high = 1 / (1 + Math.Exp(-6)); // sigmoid(-6), sigmoid(6)
        double sigmoidRange = (last - first) / (high - low);
        var candidates = new (ScheduleKind Kind, double Start, double End)[]
        {
            (ScheduleKind.Linear, first, last),
            (ScheduleKind.Quadratic, first, last),
            (ScheduleKind.Sigmoid, first - low * sigmoidRange, first - low * sigmoidRange + sigmoidRange),
            (ScheduleKind.Cosine, 0, 0),
        };
        foreach (var (kind, start, end) in candidates)
        {
            if (ScheduleMath.Check(kind, tables.Timesteps, start, end) is not null) continue;
            double[] closed = ScheduleMath.Betas(kind, tables.Timesteps, start, end);
            if (closed.Zip(betas, (a, b) => Math.Abs(a - b)).Max() <= 1e-12 * betas.Max())
                return kind.ToString().ToLowerInvariant();
        }
        return "custom";
    }
}

/// <summary>What <see cref="OnnxExport.Export"/> wrote.</summary>
/// <param name="Model">The catalog model exported.</param>
/// <param name="Weights">"EMA" or "raw".</param>
/// <param name="WeightsReason">Why those weights.</param>
/// <param name="Step">The optimiser steps behind the weights.</param>
/// <param name="Bytes">The size of the .onnx file.</param>
/// <param name="Path">The file written.</param>
public sealed record OnnxExportResult(string Model, string Weights, string WeightsReason, long Step, long Bytes, string Path);
