// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal), so a YAML
// spec is read by one reader, with one key table and one set of messages, at build time (where its
// errors become DDPM1xx diagnostics) and at run time (SpecFile.Load). This part: the format, its
// keys and their spellings; SpecYaml.Read.cs reads, SpecYaml.Nodes.cs holds the reading machinery,
// SpecYaml.Hash.cs the architecture hash, SpecYaml.Names.cs names and suggestions.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>Reads a YAML spec (model, schedule, training) into plain values plus errors; never throws.</summary>
#if DDPM_GENERATOR
    internal static partial class SpecYaml
#else
    public static partial class SpecYaml
#endif
    {
        /// <summary>AttentionKind's members in order: None, Linear, Full.</summary>
        public static readonly string[] AttentionValues = { "none", "linear", "full" };
        /// <summary>ScheduleKind's members in order: Linear, Cosine, Quadratic, Sigmoid.</summary>
        public static readonly string[] ScheduleKindValues = { "linear", "cosine", "quadratic", "sigmoid" };
        /// <summary>LossKind's members in order: Huber, L2, L1.</summary>
        public static readonly string[] LossValues = { "huber", "l2", "l1" };
        /// <summary>The values of `training.optimizer.kind`: only Adam.</summary>
        public static readonly string[] OptimizerValues = { "adam" };
        /// <summary>The values of `training.precision`: float32, bfloat16 and float16 (with dynamic loss scaling, for CUDA).</summary>
        public static readonly string[] PrecisionValues = { "fp32", "bf16", "fp16" };
        /// <summary>Objective's members in order: Eps, X0, V.</summary>
        public static readonly string[] ObjectiveValues = { "eps", "x0", "v" };
        /// <summary>EmaWarmup's members in order: Power, Ratio, None.</summary>
        public static readonly string[] EmaWarmupValues = { "power", "ratio", "none" };
        /// <summary>The values of `training.log`: where training also logs (tensorboard: event files under the run folder's tensorboard/).</summary>
        public static readonly string[] LogValues = { "tensorboard" };
        /// <summary>SamplerKind's members in order: Ddpm, Ddim, DpmSolver2M, DpmSolver2MSde (the CLI's --sampler spellings).</summary>
        public static readonly string[] SamplerValues = { "ddpm", "ddim", "dpmpp-2m", "dpmpp-2m-sde" };

        /// <summary>The YAML spelling of an attention kind.</summary>
        public static string Spelling(AttentionKind value) => Spelling(AttentionValues, (int)value);
        /// <summary>The YAML spelling of a schedule kind.</summary>
        public static string Spelling(ScheduleKind value) => Spelling(ScheduleKindValues, (int)value);
        /// <summary>The YAML spelling of an objective.</summary>
        public static string Spelling(Objective value) => Spelling(ObjectiveValues, (int)value);
        /// <summary>The YAML spelling of an EMA warm-up.</summary>
        public static string Spelling(EmaWarmup value) => Spelling(EmaWarmupValues, (int)value);
        /// <summary>The YAML spelling of a loss ("huber"); an undefined value is written as its number.</summary>
        public static string Spelling(LossKind value) => Spelling(LossValues, (int)value);
        /// <summary>The YAML (and --sampler) spelling of a sampler.</summary>
        public static string Spelling(SamplerKind value) => Spelling(SamplerValues, (int)value);

        /// <summary>names[index] when the enum value is a member, else the number (an undefined value is never silently renamed).</summary>
        private static string Spelling(string[] names, int index) =>
            index >= 0 && index < names.Length ? names[index] : index.ToString(CultureInfo.InvariantCulture);

        /// <summary>
        /// Every key of the format by section path ("" is the root, "model.stages[]" a stage entry).
        /// The reader accepts exactly these; the JSON Schema must list the same (a test checks).
        /// </summary>
        public static IReadOnlyDictionary<string, IReadOnlyList<SpecKey>> Sections { get; } = new Dictionary<string, IReadOnlyList<SpecKey>>(StringComparer.Ordinal)
        {
            [""] = new[]
            {
                new SpecKey("model", SpecValueType.Mapping, "the U-Net to generate"),
                new SpecKey("schedule", SpecValueType.Mapping, "the noise schedule to generate"),
                new SpecKey("training", SpecValueType.Mapping, "how to train the model"),
            },
            ["model"] = new[]
            {
                new SpecKey("name", SpecValueType.String, "the generated class name, a C# identifier", required: true),
                new SpecKey("namespace", SpecValueType.String, "the namespace of the generated classes"),
                new SpecKey("channels", SpecValueType.Integer, "image channels: 1 for grayscale, 3 for RGB", required: true),
                new SpecKey("image_size", SpecValueType.Integer, "image height and width in pixels", required: true),
                new SpecKey("dim", SpecValueType.Integer, "the base channel count of the U-Net", required: true),
                new SpecKey("dim_mults", SpecValueType.List, "channel multiplier of each stage, one stage per entry"),
                new SpecKey("resnet_block_groups", SpecValueType.Integer, "GroupNorm groups of the ResNet blocks"),
                new SpecKey("stages", SpecValueType.List, "the down stages in order: entry i is stage i"),
                new SpecKey("mid", SpecValueType.Mapping, "the middle of the U-Net"),
                new SpecKey("attention", SpecValueType.Mapping, "the attention layers' heads"),
                new SpecKey("classes", SpecValueType.Integer, "number of classes of a class-conditional model (at least 2; leave out for an unconditional one)"),
                new SpecKey("class_dropout", SpecValueType.Number, "share of training labels replaced by the null class, in [0, 1) (default 0.1)"),
                new SpecKey("guidance", SpecValueType.Number, "classifier-free guidance scale of sampling, >= 0 (1 = none, the default)"),
            },
            ["model.stages[]"] = new[]
            {
                new SpecKey("blocks", SpecValueType.Integer, "ResNet blocks in the stage"),
                new SpecKey("attention", SpecValueType.Enum, "the stage's attention layer", false, AttentionValues),
            },
            ["model.mid"] = new[]
            {
                new SpecKey("attention", SpecValueType.Enum, "the attention layer between the two middle ResNet blocks", false, AttentionValues),
            },
            ["model.attention"] = new[]
            {
                new SpecKey("heads", SpecValueType.Integer, "attention heads"),
                new SpecKey("dim_head", SpecValueType.Integer, "channels per attention head"),
            },
            ["schedule"] = new[]
            {
                new SpecKey("name", SpecValueType.String, "the generated class name; required without a model section"),
                new SpecKey("kind", SpecValueType.Enum, "how the betas grow", true, ScheduleKindValues),
                new SpecKey("timesteps", SpecValueType.Integer, "the number of diffusion steps T"),
                new SpecKey("beta_start", SpecValueType.Number, "beta at t = 0 (not used by cosine)"),
                new SpecKey("beta_end", SpecValueType.Number, "beta at t = T - 1 (not used by cosine)"),
                new SpecKey("objective", SpecValueType.Enum, "what the model predicts: the noise eps, x0 or the velocity v", false, ObjectiveValues),
                new SpecKey("clip_x0", SpecValueType.Boolean, "clip the predicted x_0 to [-1, 1] at every sampling step"),
                new SpecKey("dynamic_threshold", SpecValueType.Number, "dynamic thresholding: the quantile of |x_0| per image, in (0, 1) (0 = off)"),
            },
            ["training"] = new[]
            {
                new SpecKey("dataset", SpecValueType.String, "fashion-mnist, mnist, idx:<folder> (MNIST-style IDX files, as mnist-idx:<folder>), cifar10:<folder>, images:<folder> or synthetic"),
                new SpecKey("batch_size", SpecValueType.Integer, "images per optimiser step"),
                new SpecKey("epochs", SpecValueType.Integer, "passes over the data; ignored when steps is set"),
                new SpecKey("steps", SpecValueType.Integer, "total optimiser steps; overrides epochs"),
                new SpecKey("loss", SpecValueType.Enum, "distance between the target of the objective (eps, x0 or v) and the prediction", false, LossValues),
                new SpecKey("min_snr_gamma", SpecValueType.Number, "min-SNR loss weighting: weights clipped at this gamma (0 = off)"),
                new SpecKey("optimizer", SpecValueType.Mapping, "the optimiser"),
                new SpecKey("warmup_steps", SpecValueType.Integer, "linear learning-rate warm-up steps (0 = none)"),
                new SpecKey("grad_clip", SpecValueType.Number, "clip the global gradient norm to this (0 = no clipping)"),
                new SpecKey("ema_decay", SpecValueType.Number, "decay of the weights' moving average (0 = no EMA)"),
                new SpecKey("ema_warmup", SpecValueType.Enum, "how the EMA decay grows to ema_decay", false, EmaWarmupValues),
                new SpecKey("ema_power", SpecValueType.Number, "exponent of the power warm-up"),
                new SpecKey("ema_inv_gamma", SpecValueType.Number, "step scale of the power warm-up"),
                new SpecKey("random_flip", SpecValueType.Boolean, "flip training images horizontally at random"),
                new SpecKey("sample_every", SpecValueType.Integer, "write a sample grid every this many steps (0 = only at the end)"),
                new SpecKey("checkpoint_every", SpecValueType.Integer, "write a checkpoint every this many steps (0 = none by steps; ddpm train also writes one every 10 minutes and after the last step)"),
                new SpecKey("eval", SpecValueType.Mapping, "sample-quality evaluation during training"),
                new SpecKey("log", SpecValueType.List, "where training also logs: a list of tensorboard (event files under the run folder's tensorboard/)"),
                new SpecKey("seed", SpecValueType.Integer, "seed of every random choice"),
                new SpecKey("precision", SpecValueType.Enum, "the floating-point precision of training", false, PrecisionValues),
            },
            ["training.optimizer"] = new[]
            {
                new SpecKey("kind", SpecValueType.Enum, "the optimiser", false, OptimizerValues),
                new SpecKey("lr", SpecValueType.Number, "the learning rate"),
                new SpecKey("beta1", SpecValueType.Number, "Adam's first-moment decay"),
                new SpecKey("beta2", SpecValueType.Number, "Adam's second-moment decay"),
                new SpecKey("weight_decay", SpecValueType.Number, "L2 weight decay"),
            },
            ["training.eval"] = new[]
            {
                new SpecKey("every", SpecValueType.Integer, "evaluate every this many steps (0 = never)"),
                new SpecKey("samples", SpecValueType.Integer, "images sampled per evaluation"),
                new SpecKey("sampler", SpecValueType.Enum, "the sampler of the evaluation images", false, SamplerValues),
                new SpecKey("steps", SpecValueType.Integer, "sampler steps (ddim and the dpmpp-2m variants; ddpm runs all T)"),
            },
        };
    }
}
