using System.Globalization;
using System.Text;
using Ddpm.Models;
using Ddpm.Specs;

namespace Ddpm.Cli;

/// <summary>
/// The resolved settings of a run, written to runs/&lt;name&gt;/config.yaml and stored in every
/// checkpoint, so `ddpm sample` knows which model a checkpoint belongs to.
/// </summary>
internal static class RunConfig
{
    public static string Write(ModelEntry entry, TrainingSpec t, string device, string allocator)
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
        text.AppendLine($"allocator: \"{allocator}\"");
        text.AppendLine("training:");
        text.AppendLine($"  dataset: \"{t.Dataset}\"");
        text.AppendLine($"  batch_size: {t.BatchSize}");
        text.AppendLine($"  epochs: {t.Epochs}");
        if (t.Steps is int steps) text.AppendLine($"  steps: {steps}");
        text.AppendLine($"  loss: {t.Loss.ToString().ToLowerInvariant()}");
        text.AppendLine($"  min_snr_gamma: {F(t.MinSnrGamma)}");
        text.AppendLine($"  optimizer: {{ kind: {t.Optimizer.Kind}, lr: {F(t.Optimizer.Lr)}, beta1: {F(t.Optimizer.Beta1)}, beta2: {F(t.Optimizer.Beta2)}, weight_decay: {F(t.Optimizer.WeightDecay)} }}");
        text.AppendLine($"  warmup_steps: {t.WarmupSteps}");
        text.AppendLine($"  grad_clip: {F(t.GradClip)}");
        text.AppendLine($"  ema_decay: {F(t.EmaDecay)}");
        text.AppendLine($"  ema_warmup: {SpecYaml.Spelling(t.EmaWarmup)}");
        text.AppendLine($"  ema_power: {F(t.EmaPower)}");
        text.AppendLine($"  ema_inv_gamma: {F(t.EmaInvGamma)}");
        text.AppendLine($"  random_flip: {(t.RandomFlip ? "true" : "false")}");
        text.AppendLine($"  sample_every: {t.SampleEvery}");
        text.AppendLine($"  checkpoint_every: {t.CheckpointEvery}");
        text.AppendLine($"  eval: {{ every: {t.Eval.Every}, samples: {t.Eval.Samples}, sampler: {SpecYaml.Spelling(t.Eval.Sampler)}, steps: {t.Eval.Steps} }}");
        text.AppendLine($"  seed: {t.Seed}");
        text.AppendLine($"  precision: {t.Precision}");
        return text.ToString();
    }

    /// <summary>
    /// What a checkpoint's run config records about its run: the model, the training data set, the architecture hash and
    /// the batch size (null when absent).
    /// </summary>
    public sealed record Recorded(string? Model, string? Dataset, string? ArchitectureHash = null, int? BatchSize = null);

    /// <summary>Reads the run config <see cref="Write"/> made (YAML); null fields for what it lacks or cannot be parsed.</summary>
    public static Recorded Read(string configText)
    {
        try
        {
            var yaml = new YamlDotNet.RepresentationModel.YamlStream();
            yaml.Load(new StringReader(configText));
            if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlDotNet.RepresentationModel.YamlMappingNode root)
                return new Recorded(null, null);
            static string? Scalar(YamlDotNet.RepresentationModel.YamlMappingNode map, string key) =>
                map.Children.TryGetValue(key, out var node) && node is YamlDotNet.RepresentationModel.YamlScalarNode scalar ? scalar.Value : null;
            var map = root.Children.TryGetValue("training", out var training) ? training as YamlDotNet.RepresentationModel.YamlMappingNode : null;
            string? dataset = map is null ? null : Scalar(map, "dataset");
            int? batchSize = map is not null && int.TryParse(Scalar(map, "batch_size"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int b) ? b : null;
            return new Recorded(Scalar(root, "model")?.Trim(), dataset, Scalar(root, "architecture_hash")?.Trim(), batchSize);
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return new Recorded(null, null);
        }
    }

    /// <summary>The model name recorded in a run config (its `model:` key).</summary>
    public static string? ModelName(string configText) => Read(configText).Model;
}
