// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). The rules of the settings, written
// once. Training: the YAML reader reports them as DDPM106 at the value (at build time and at run time), and the trainer
// checks settings made in code or on the command line against the same table. Schedule: the generator's diagnostics
// (DDPM009-011, DDPM301) and ScheduleMath.Check, which guards schedules built at run time.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>The rules of the `training:` section, one entry per setting that has one.</summary>
#if DDPM_GENERATOR
    internal static class TrainingRules
#else
    public static class TrainingRules
#endif
    {
        /// <summary>`batch_size`: &gt;= 1.</summary>
        public static readonly NumberRange BatchSize = NumberRange.AtLeast(1);
        /// <summary>`epochs`: &gt;= 1.</summary>
        public static readonly NumberRange Epochs = NumberRange.AtLeast(1);
        /// <summary>`steps`, when set: &gt;= 1.</summary>
        public static readonly NumberRange Steps = NumberRange.AtLeast(1);
        /// <summary>`min_snr_gamma`: &gt;= 0 (0 = off).</summary>
        public static readonly NumberRange MinSnrGamma = NumberRange.NonNegative;
        /// <summary>`optimizer.lr`: &gt; 0.</summary>
        public static readonly NumberRange Lr = NumberRange.Positive;
        /// <summary>`optimizer.beta1` and `optimizer.beta2`, Adam's moment decays: in [0, 1).</summary>
        public static readonly NumberRange Beta = NumberRange.UnitOpenAbove;
        /// <summary>`optimizer.weight_decay`: &gt;= 0.</summary>
        public static readonly NumberRange WeightDecay = NumberRange.NonNegative;
        /// <summary>`warmup_steps`: &gt;= 0 (0 = no warm-up).</summary>
        public static readonly NumberRange WarmupSteps = NumberRange.AtLeast(0);
        /// <summary>`grad_clip`: &gt;= 0 (0 = no clipping).</summary>
        public static readonly NumberRange GradClip = NumberRange.NonNegative;
        /// <summary>`ema_decay`: in [0, 1) (0 = no EMA).</summary>
        public static readonly NumberRange EmaDecay = NumberRange.UnitOpenAbove;
        /// <summary>`ema_power`: &gt; 0.</summary>
        public static readonly NumberRange EmaPower = NumberRange.Positive;
        /// <summary>`ema_inv_gamma`: &gt; 0.</summary>
        public static readonly NumberRange EmaInvGamma = NumberRange.Positive;
        /// <summary>`sample_every`: &gt;= 0 (0 = only at the end).</summary>
        public static readonly NumberRange SampleEvery = NumberRange.AtLeast(0);
        /// <summary>`checkpoint_every`: &gt;= 0 (0 = none by steps).</summary>
        public static readonly NumberRange CheckpointEvery = NumberRange.AtLeast(0);
        /// <summary>`eval.every`: &gt;= 0 (0 = never).</summary>
        public static readonly NumberRange EvalEvery = NumberRange.AtLeast(0);
        /// <summary>`eval.samples`: &gt;= 2 (the statistics need at least two images).</summary>
        public static readonly NumberRange EvalSamples = NumberRange.AtLeast(2);
        /// <summary>`eval.steps`: &gt;= 1.</summary>
        public static readonly NumberRange EvalSteps = NumberRange.AtLeast(1);

        /// <summary>Every numeric setting with its rule, as (key path, value, range); a null value (steps unset) is allowed.</summary>
        public static IEnumerable<(string Key, double? Value, NumberRange Range)> Numbers(TrainingSpec t) => new (string, double?, NumberRange)[]
        {
            ("batch_size", t.BatchSize, BatchSize),
            ("epochs", t.Epochs, Epochs),
            ("steps", t.Steps, Steps),
            ("min_snr_gamma", t.MinSnrGamma, MinSnrGamma),
            ("optimizer.lr", t.Optimizer.Lr, Lr),
            ("optimizer.beta1", t.Optimizer.Beta1, Beta),
            ("optimizer.beta2", t.Optimizer.Beta2, Beta),
            ("optimizer.weight_decay", t.Optimizer.WeightDecay, WeightDecay),
            ("warmup_steps", t.WarmupSteps, WarmupSteps),
            ("grad_clip", t.GradClip, GradClip),
            ("ema_decay", t.EmaDecay, EmaDecay),
            ("ema_power", t.EmaPower, EmaPower),
            ("ema_inv_gamma", t.EmaInvGamma, EmaInvGamma),
            ("sample_every", t.SampleEvery, SampleEvery),
            ("checkpoint_every", t.CheckpointEvery, CheckpointEvery),
            ("eval.every", t.Eval.Every, EvalEvery),
            ("eval.samples", t.Eval.Samples, EvalSamples),
            ("eval.steps", t.Eval.Steps, EvalSteps),
        };

        /// <summary>
        /// What breaks a rule in settings made in code or on the command line, worded as the reader's DDPM106/DDPM105
        /// messages ("'training.optimizer.lr' must be > 0, got -1"); empty when the settings are valid.
        /// </summary>
        public static IEnumerable<string> Problems(TrainingSpec t)
        {
            if (t.Optimizer == null) { yield return "'training.optimizer' is missing"; yield break; }
            if (t.Eval == null) { yield return "'training.eval' is missing"; yield break; }
            foreach (var (key, value, range) in Numbers(t))
                if (value is double v && !range.Allows(v))
                    yield return $"'training.{key}' must be {range.Text}, got {v.ToString("R", CultureInfo.InvariantCulture)}";
            foreach (var (key, value, allowed) in Choices(t))
                if (!allowed.Contains(value))
                    yield return $"'training.{key}' has unknown value '{value}'; use {string.Join(", ", allowed)}";
            if (t.Log == null) { yield return "'training.log' is missing"; yield break; }
            foreach (string log in t.Log)
                if (!SpecYaml.LogValues.Contains(log))
                    yield return $"'training.log' has unknown value '{log}'; use {string.Join(", ", SpecYaml.LogValues)}";
        }

        /// <summary>The settings with a fixed set of values, as (key path, value as spelled, the allowed spellings).</summary>
        private static IEnumerable<(string Key, string Value, string[] Allowed)> Choices(TrainingSpec t) => new[]
        {
            ("loss", SpecYaml.Spelling(t.Loss), SpecYaml.LossValues),
            ("optimizer.kind", (t.Optimizer.Kind ?? "").ToLowerInvariant(), SpecYaml.OptimizerValues),
            ("ema_warmup", SpecYaml.Spelling(t.EmaWarmup), SpecYaml.EmaWarmupValues),
            ("eval.sampler", SpecYaml.Spelling(t.Eval.Sampler), SpecYaml.SamplerValues),
            ("precision", (t.Precision ?? "").ToLowerInvariant(), SpecYaml.PrecisionValues),
        };
    }
}
