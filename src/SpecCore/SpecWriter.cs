// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). The one writer of resolved
// training settings: config.yaml, the catalog entries the generator emits and the generator's cache key all come from
// TrainingValues, so a training key is listed here once and read back by SpecYaml.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>
    /// Writes resolved training settings: as (key path, value) pairs and as the canonical `training:` YAML that
    /// <see cref="SpecYaml"/> reads back to the same settings.
    /// </summary>
#if DDPM_GENERATOR
    internal static class SpecWriter
#else
    public static class SpecWriter
#endif
    {
        /// <summary>
        /// Every training setting as (key path, value), in the order of the spec format's key table: plain values are
        /// string, string[], int, long, double, bool or null; enums are the spec's enums. "optimizer.lr" is key lr of the optimizer mapping.
        /// </summary>
        public static IReadOnlyList<KeyValuePair<string, object?>> TrainingValues(TrainingSpec t)
        {
            var values = new List<KeyValuePair<string, object?>>();
            void Add(string key, object? value) => values.Add(new KeyValuePair<string, object?>(key, value));
            Add("dataset", t.Dataset);
            Add("batch_size", t.BatchSize);
            Add("epochs", t.Epochs);
            Add("steps", t.Steps);
            Add("loss", t.Loss);
            Add("min_snr_gamma", t.MinSnrGamma);
            Add("optimizer.kind", t.Optimizer.Kind);
            Add("optimizer.lr", t.Optimizer.Lr);
            Add("optimizer.beta1", t.Optimizer.Beta1);
            Add("optimizer.beta2", t.Optimizer.Beta2);
            Add("optimizer.weight_decay", t.Optimizer.WeightDecay);
            Add("warmup_steps", t.WarmupSteps);
            Add("grad_clip", t.GradClip);
            Add("ema_decay", t.EmaDecay);
            Add("ema_warmup", t.EmaWarmup);
            Add("ema_power", t.EmaPower);
            Add("ema_inv_gamma", t.EmaInvGamma);
            Add("random_flip", t.RandomFlip);
            Add("sample_every", t.SampleEvery);
            Add("checkpoint_every", t.CheckpointEvery);
            Add("eval.every", t.Eval.Every);
            Add("eval.samples", t.Eval.Samples);
            Add("eval.sampler", t.Eval.Sampler);
            Add("eval.steps", t.Eval.Steps);
            Add("log", t.Log);
            Add("seed", t.Seed);
            Add("precision", t.Precision);
            return values;
        }

        /// <summary>
        /// The training section as canonical YAML, every key explicit: "training:" and one line per key indented by two
        /// spaces, the optimizer and eval mappings in flow style. SpecYaml reads it back to the same settings.
        /// </summary>
        public static string TrainingYaml(TrainingSpec t)
        {
            var text = new StringBuilder("training:\n");
            foreach (var group in TrainingValues(t).GroupBy(v => Mapping(v.Key)))
            {
                if (group.Key.Length == 0)
                    foreach (var pair in group) text.Append("  ").Append(pair.Key).Append(": ").Append(Yaml(pair.Value)).Append('\n');
                else
                    text.Append("  ").Append(group.Key).Append(": { ")
                        .Append(string.Join(", ", group.Select(p => p.Key.Substring(group.Key.Length + 1) + ": " + Yaml(p.Value))))
                        .Append(" }\n");
            }
            return text.ToString();
        }

        /// <summary>The nested mapping a key path belongs to ("optimizer" for "optimizer.lr"), or "" at the top.</summary>
        private static string Mapping(string key)
        {
            int dot = key.IndexOf('.');
            return dot < 0 ? "" : key.Substring(0, dot);
        }

        /// <summary>A value as a YAML scalar: strings double-quoted (a data set like cifar10:folder holds a colon), numbers round-trip exact.</summary>
        public static string Yaml(object? value) => value switch
        {
            null => "null",
            string s => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"",
            bool b => b ? "true" : "false",
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            int i => i.ToString(CultureInfo.InvariantCulture),
            long l => l.ToString(CultureInfo.InvariantCulture),
            string[] list => "[" + string.Join(", ", list.Select(item => Yaml(item))) + "]",
            LossKind loss => SpecYaml.Spelling(loss),
            EmaWarmup warmup => SpecYaml.Spelling(warmup),
            SamplerKind sampler => SpecYaml.Spelling(sampler),
            _ => throw new ArgumentException("No YAML form for " + value.GetType().Name, nameof(value)),
        };
    }
}
