using System.Globalization;
using System.Text;
using Ddpm.Models;
using Ddpm.Specs;

namespace Ddpm.Training;

/// <summary>
/// The resolved settings of a run, written to runs/&lt;name&gt;/config.yaml and stored in every
/// checkpoint, so `ddpm sample` knows which model a checkpoint belongs to.
/// </summary>
public static class RunConfig
{
    /// <summary>The run config of a run of <paramref name="entry"/> with training settings <paramref name="t"/>, as YAML.</summary>
    /// <param name="entry">The model trained.</param>
    /// <param name="t">The resolved training settings (the spec's, with the command line's overrides).</param>
    /// <param name="device">Where the run trains, e.g. cpu or cuda.</param>
    /// <param name="allocator">The native allocator in use (<see cref="Ddpm.Native.Allocator.Status"/>), for the record.</param>
    /// <param name="finalSamples">Images in the sample grid drawn after the last step (0: none), so a resume draws the grid the run asked for; null: not recorded.</param>
    public static string Write(ModelEntry entry, TrainingSpec t, string device, string allocator, int? finalSamples = null)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var text = new StringBuilder();
        text.AppendLine("# Resolved settings of this run, written by ddpm train.");
        text.AppendLine($"model: {entry.Name}");
        text.AppendLine($"spec: {entry.SpecFile}");
        text.AppendLine($"architecture_hash: {entry.ArchitectureHash}");
        text.AppendLine($"schedule_fingerprint: {entry.Schedule.Fingerprint}");
        var options = entry.Diffusion.Options;
        text.AppendLine($"diffusion: {{ objective: {SpecYaml.Spelling(options.Objective)}, clip_x0: {(options.ClipX0 ? "true" : "false")}, dynamic_threshold: {F(options.DynamicThreshold)} }}");
        text.AppendLine($"parameters: {entry.ParameterCount}");
        text.AppendLine($"device: {device}");
        text.AppendLine($"allocator: {SpecWriter.Yaml(allocator)}");
        if (finalSamples is int n) text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"final_samples: {n}"));
        text.Append(SpecWriter.TrainingYaml(t));
        return text.ToString();
    }

    /// <summary>
    /// What a checkpoint's run config records about its run: the model, the architecture hash and the training settings
    /// (null when absent or unreadable); the data set and batch size are the training settings'.
    /// </summary>
    /// <param name="Model">The catalog name of the model (its `model:` key).</param>
    /// <param name="ArchitectureHash">The hash of the model and schedule sections the run was built from.</param>
    /// <param name="Training">The run's training settings.</param>
    public sealed record Recorded(string? Model, string? ArchitectureHash, TrainingSpec? Training)
    {
        /// <summary>The data set the run trained on (its `training.dataset`).</summary>
        public string? Dataset => Training?.Dataset;
        /// <summary>Images per optimiser step.</summary>
        public int? BatchSize => Training?.BatchSize;
        /// <summary>Images in the grid the run draws after its last step (0: none); null when not recorded.</summary>
        public int? FinalSamples { get; init; }
    }

    /// <summary>
    /// Reads the run config <see cref="Write"/> made: its top-level keys as YAML, its training section through the spec
    /// reader (SpecYaml), so it reads back exactly what SpecWriter wrote; null fields for what it lacks or cannot be parsed.
    /// </summary>
    public static Recorded Read(string configText)
    {
        try
        {
            var yaml = new YamlDotNet.RepresentationModel.YamlStream();
            yaml.Load(new StringReader(configText));
            if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlDotNet.RepresentationModel.YamlMappingNode root)
                return new Recorded(null, null, null);
            static string? Scalar(YamlDotNet.RepresentationModel.YamlMappingNode map, string key) =>
                map.Children.TryGetValue(key, out var node) && node is YamlDotNet.RepresentationModel.YamlScalarNode scalar ? scalar.Value : null;
            var training = SpecYaml.ReadTrainingOf(configText, out var errors);
            return new Recorded(Scalar(root, "model")?.Trim(), Scalar(root, "architecture_hash")?.Trim(), errors.Count == 0 ? training : null)
            {
                FinalSamples = int.TryParse(Scalar(root, "final_samples"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : null,
            };
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return new Recorded(null, null, null);
        }
    }

    /// <summary>The model name recorded in a run config (its `model:` key).</summary>
    public static string? ModelName(string configText) => Read(configText).Model;
}
