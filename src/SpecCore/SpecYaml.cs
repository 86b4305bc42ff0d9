// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal), so a YAML
// spec is read by one reader, with one key table and one set of messages, at build time (where its
// errors become DDPM1xx diagnostics) and at run time (SpecFile.Load).
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
    internal static class SpecYaml
#else
    public static class SpecYaml
#endif
    {
        public static readonly string[] AttentionValues = { "none", "linear", "full" };
        public static readonly string[] ScheduleKindValues = { "linear", "cosine", "quadratic", "sigmoid" };
        public static readonly string[] LossValues = { "huber", "l2", "l1" };
        public static readonly string[] OptimizerValues = { "adam" };
        public static readonly string[] PrecisionValues = { "fp32", "bf16", "fp16" };
        /// <summary>Objective's members in order: Eps, X0, V.</summary>
        public static readonly string[] ObjectiveValues = { "eps", "x0", "v" };
        /// <summary>EmaWarmup's members in order: Power, Ratio, None.</summary>
        public static readonly string[] EmaWarmupValues = { "power", "ratio", "none" };
        /// <summary>SamplerKind's members in order: Ddpm, Ddim, DpmSolver2M (the CLI's --sampler spellings).</summary>
        public static readonly string[] SamplerValues = { "ddpm", "ddim", "dpmpp-2m" };

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
                new SpecKey("dataset", SpecValueType.String, "fashion-mnist, idx:<folder> (MNIST-style IDX files, as mnist-idx:<folder>), cifar10:<folder>, images:<folder> or synthetic"),
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
                new SpecKey("steps", SpecValueType.Integer, "sampler steps (ddim and dpmpp-2m; ddpm runs all T)"),
            },
        };

        /// <summary>Reads a spec's text. Errors are collected in the document, never thrown.</summary>
        public static SpecDocument Read(string text)
        {
            var document = new SpecDocument();
            var map = new TextMap(text);
            var stream = new YamlStream();
            var scanner = new Scanner(new StringReader(text));
            try
            {
                SpecSpan? tooDeep = CheckDepth(text, map);
                if (tooDeep != null)
                {
                    document.IsSpec = LooksLikeSpec(text);
                    document.Errors.Add(new SpecError(SpecErrorKind.Malformed, "", tooDeep, $"mappings and lists are nested deeper than {MaxDepth} levels"));
                    return document;
                }
                stream.Load(new Parser(scanner));
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                // Broken YAML: report it if the file looks like a spec, else it is somebody else's file.
                document.IsSpec = LooksLikeSpec(text);
                string message = e is YamlException ? StripMark(e.Message)
                    : "the parser cannot read on from here; look for an unclosed bracket or quote, or a misplaced ':'";
                SpecSpan at = e is YamlException y ? map.Span(y.Start.Index, y.End.Index)
                    : map.Span(scanner.CurrentPosition.Index, scanner.CurrentPosition.Index);
                document.Errors.Add(new SpecError(SpecErrorKind.Malformed, "", at, message));
                return document;
            }

            if (stream.Documents.Count == 0 || !(stream.Documents[0].RootNode is YamlMappingNode root)) return document;
            if (!root.Children.Keys.OfType<YamlScalarNode>().Any(k => k.Value == "model" || k.Value == "schedule")) return document;
            document.IsSpec = true;
            if (stream.Documents.Count > 1)
                document.Errors.Add(new SpecError(SpecErrorKind.Malformed, "", map.Span(stream.Documents[1].RootNode),
                    $"a spec is one YAML document, found {stream.Documents.Count}; remove the '---' separators"));

            var reader = new Reader(document, map);
            Section top = reader.Open(root, "", null);
            Section? model = top.Mapping("model");
            if (model != null) document.Model = ReadModel(model);
            Section? schedule = top.Mapping("schedule");
            if (schedule != null) document.Schedule = ReadSchedule(schedule);
            Section? training = top.Mapping("training");
            if (training != null)
            {
                document.HasTraining = true;
                document.Training = ReadTraining(training);
            }
            // A schedule is named after its model; on its own it needs a name.
            if (document.Schedule != null && !document.Keys.ContainsKey("model") && !document.Keys.ContainsKey("schedule.name"))
                document.Errors.Add(new SpecError(SpecErrorKind.MissingKey, "schedule.name", document.Keys["schedule"], "'schedule'", "name",
                                                  "the generated class name; required without a model section"));
            return document;
        }

        /// <summary>
        /// Reads the `training` mapping of a YAML text that holds other keys too (a run's config.yaml, written by
        /// SpecWriter): the settings, with the spec's defaults for keys it lacks, or null when the text has no readable
        /// training mapping. Errors in the mapping are collected in <paramref name="errors"/>.
        /// </summary>
        public static TrainingSpec? ReadTrainingOf(string text, out IReadOnlyList<SpecError> errors)
        {
            var document = new SpecDocument();
            errors = document.Errors;
            var map = new TextMap(text);
            var stream = new YamlStream();
            try
            {
                if (CheckDepth(text, map) != null) return null;
                stream.Load(new StringReader(text));
            }
            catch (YamlException)
            {
                return null;
            }
            if (stream.Documents.Count == 0 || !(stream.Documents[0].RootNode is YamlMappingNode root)) return null;
            var key = root.Children.Keys.OfType<YamlScalarNode>().FirstOrDefault(k => k.Value == "training");
            if (key == null || !(root.Children[key] is YamlMappingNode training)) return null;
            return ReadTraining(new Reader(document, map).Open(training, "training", key));
        }

        /// <summary>Deeper than any spec; YamlDotNet builds its node tree recursively, so depth must be bounded first.</summary>
        private const int MaxDepth = 64;

        /// <summary>Where the nesting first exceeds MaxDepth, found from the parser's events without recursion; null if it never does.</summary>
        private static SpecSpan? CheckDepth(string text, TextMap map)
        {
            var parser = new Parser(new StringReader(text));
            int depth = 0;
            try
            {
                while (parser.MoveNext())
                {
                    ParsingEvent e = parser.Current!;
                    if (e is SequenceStart || e is MappingStart)
                    {
                        if (++depth > MaxDepth) return map.Span(e.Start.Index, Math.Max(e.End.Index, e.Start.Index + 1));
                    }
                    else if (e is SequenceEnd || e is MappingEnd) depth--;
                }
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                // Broken YAML: loading it reports the error, at the same place.
            }
            return null;
        }

        private static ModelSection ReadModel(Section s)
        {
            var model = new ModelSection();
            model.Name = s.Name("name", model.Name, dotted: false);
            model.Namespace = s.Name("namespace", model.Namespace, dotted: true);
            model.Channels = s.Int("channels", model.Channels);
            model.ImageSize = s.Int("image_size", model.ImageSize);
            model.Dim = s.Int("dim", model.Dim);
            model.DimMults = s.IntList("dim_mults", model.DimMults);
            model.ResnetBlockGroups = s.Int("resnet_block_groups", model.ResnetBlockGroups);
            foreach (Section entry in s.MappingList("stages", "model.stages[]"))
            {
                var stage = new StageSection();
                stage.Blocks = entry.Int("blocks", stage.Blocks);
                stage.Attention = entry.Enum("attention", stage.Attention, AttentionValues, new[] { AttentionKind.None, AttentionKind.Linear, AttentionKind.Full });
                model.Stages.Add(stage);
            }
            Section? mid = s.Mapping("mid");
            if (mid != null)
                model.MidAttention = mid.Enum("attention", model.MidAttention, AttentionValues, new[] { AttentionKind.None, AttentionKind.Linear, AttentionKind.Full });
            Section? attention = s.Mapping("attention");
            if (attention != null)
            {
                model.Heads = attention.Int("heads", model.Heads);
                model.DimHead = attention.Int("dim_head", model.DimHead);
            }
            return model;
        }

        private static ScheduleSection ReadSchedule(Section s)
        {
            var schedule = new ScheduleSection();
            schedule.Name = s.Name("name", schedule.Name, dotted: false);
            schedule.Kind = s.Enum("kind", schedule.Kind, ScheduleKindValues,
                new[] { ScheduleKind.Linear, ScheduleKind.Cosine, ScheduleKind.Quadratic, ScheduleKind.Sigmoid });
            schedule.Timesteps = s.Int("timesteps", schedule.Timesteps);
            schedule.BetaStart = s.Double("beta_start", schedule.BetaStart);
            schedule.BetaEnd = s.Double("beta_end", schedule.BetaEnd);
            schedule.Objective = s.Enum("objective", schedule.Objective, ObjectiveValues, new[] { Objective.Eps, Objective.X0, Objective.V });
            schedule.ClipX0 = s.Bool("clip_x0", schedule.ClipX0);
            // Any finite number: the range, and the conflict with clip_x0, are SpecValidator's (DDPM3xx), as for the attribute.
            schedule.DynamicThreshold = s.Double("dynamic_threshold", schedule.DynamicThreshold);
            return schedule;
        }

        private static TrainingSpec ReadTraining(Section s)
        {
            var t = new TrainingSpec();
            t.Dataset = s.String("dataset", t.Dataset);
            t.BatchSize = s.Int("batch_size", t.BatchSize, min: 1);
            t.Epochs = s.Int("epochs", t.Epochs, min: 1);
            t.Steps = s.NullableInt("steps", t.Steps, min: 1);
            t.Loss = s.Enum("loss", t.Loss, LossValues, new[] { LossKind.Huber, LossKind.L2, LossKind.L1 });
            t.MinSnrGamma = s.Double("min_snr_gamma", t.MinSnrGamma, Range.NonNegative);
            Section? optimizer = s.Mapping("optimizer");
            if (optimizer != null)
            {
                OptimizerSpec o = t.Optimizer;
                o.Kind = optimizer.Enum("kind", o.Kind, OptimizerValues, OptimizerValues);
                o.Lr = optimizer.Double("lr", o.Lr, Range.Positive);
                o.Beta1 = optimizer.Double("beta1", o.Beta1, Range.UnitOpenAbove);
                o.Beta2 = optimizer.Double("beta2", o.Beta2, Range.UnitOpenAbove);
                o.WeightDecay = optimizer.Double("weight_decay", o.WeightDecay, Range.NonNegative);
            }
            t.WarmupSteps = s.Int("warmup_steps", t.WarmupSteps, min: 0);
            t.GradClip = s.Double("grad_clip", t.GradClip, Range.NonNegative);
            t.EmaDecay = s.Double("ema_decay", t.EmaDecay, Range.UnitOpenAbove);
            t.EmaWarmup = s.Enum("ema_warmup", t.EmaWarmup, EmaWarmupValues, new[] { EmaWarmup.Power, EmaWarmup.Ratio, EmaWarmup.None });
            t.EmaPower = s.Double("ema_power", t.EmaPower, Range.Positive);
            t.EmaInvGamma = s.Double("ema_inv_gamma", t.EmaInvGamma, Range.Positive);
            t.RandomFlip = s.Bool("random_flip", t.RandomFlip);
            t.SampleEvery = s.Int("sample_every", t.SampleEvery, min: 0);
            t.CheckpointEvery = s.Int("checkpoint_every", t.CheckpointEvery, min: 0);
            Section? eval = s.Mapping("eval");
            if (eval != null)
            {
                EvalSpec e = t.Eval;
                e.Every = eval.Int("every", e.Every, min: 0);
                e.Samples = eval.Int("samples", e.Samples, min: 2);
                e.Sampler = eval.Enum("sampler", e.Sampler, SamplerValues, new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmSolver2M });
                e.Steps = eval.Int("steps", e.Steps, min: 1);
            }
            t.Seed = s.Long("seed", t.Seed);
            t.Precision = s.Enum("precision", t.Precision, PrecisionValues, PrecisionValues);
            return t;
        }

        /// <summary>
        /// A stable hash of the architecture: the model and schedule sections after defaults, so
        /// comments, formatting, key order and spelled-out defaults do not change it, and the
        /// training section does not either. The schedule's objective and x_0 treatment are part of
        /// it: a model trained for another objective is another model. FNV-1a (64-bit) over a
        /// canonical text, as 16 hex digits.
        /// </summary>
        public static string ArchitectureHash(ModelSection? model, ScheduleSection? schedule) =>
            Fnv1a(CanonicalArchitecture(model, schedule));

        /// <summary>The text ArchitectureHash hashes: one line per setting, names omitted.</summary>
        public static string CanonicalArchitecture(ModelSection? model, ScheduleSection? schedule)
        {
            var text = new StringBuilder();
            if (model == null) text.Append("model: none\n");
            else
            {
                text.Append("model.channels=").Append(I(model.Channels)).Append('\n');
                text.Append("model.image_size=").Append(I(model.ImageSize)).Append('\n');
                text.Append("model.dim=").Append(I(model.Dim)).Append('\n');
                text.Append("model.dim_mults=").Append(string.Join(",", model.DimMults.Select(I))).Append('\n');
                text.Append("model.resnet_block_groups=").Append(I(model.ResnetBlockGroups)).Append('\n');
                for (int i = 0; i < model.DimMults.Length; i++)
                {
                    StageSection stage = i < model.Stages.Count ? model.Stages[i] : new StageSection();
                    text.Append("model.stages[").Append(I(i)).Append("]=").Append(I(stage.Blocks)).Append(',')
                        .Append(AttentionValues[Index(stage.Attention)]).Append('\n');
                }
                text.Append("model.mid.attention=").Append(AttentionValues[Index(model.MidAttention)]).Append('\n');
                text.Append("model.attention=").Append(I(model.Heads)).Append(',').Append(I(model.DimHead)).Append('\n');
            }
            if (schedule == null) text.Append("schedule: none\n");
            else
            {
                int kind = (int)schedule.Kind;
                text.Append("schedule.kind=").Append(kind >= 0 && kind < ScheduleKindValues.Length ? ScheduleKindValues[kind] : I(kind)).Append('\n');
                text.Append("schedule.timesteps=").Append(I(schedule.Timesteps)).Append('\n');
                if (schedule.Kind != ScheduleKind.Cosine) // the cosine schedule has no beta range
                    text.Append("schedule.betas=").Append(R(schedule.BetaStart)).Append(',').Append(R(schedule.BetaEnd)).Append('\n');
                // Settings added later enter the text only when they differ from their defaults, so a
                // spec that does not use them keeps the hash it had (and its runs stay valid).
                if (schedule.Objective != SpecDefaults.Objective)
                    text.Append("schedule.objective=").Append(Spelling(schedule.Objective)).Append('\n');
                if (schedule.ClipX0 != SpecDefaults.ClipX0)
                    text.Append("schedule.clip_x0=").Append(schedule.ClipX0 ? "true" : "false").Append('\n');
                if (schedule.DynamicThreshold != SpecDefaults.DynamicThreshold)
                    text.Append("schedule.dynamic_threshold=").Append(R(schedule.DynamicThreshold)).Append('\n');
            }
            return text.ToString();

            static int Index(AttentionKind kind) => Math.Max(0, Math.Min(AttentionValues.Length - 1, (int)kind));
        }

        /// <summary>The closest of <paramref name="candidates"/> to a misspelt word, or null when none is close.</summary>
        public static string? Suggest(string written, IEnumerable<string> candidates)
        {
            string? best = null;
            int bestDistance = int.MaxValue;
            string normalised = written.ToLowerInvariant().Replace('-', '_');
            foreach (string candidate in candidates)
            {
                // An abbreviation ("sched", "attn": the candidate's letters in order) counts as close.
                int distance = IsAbbreviation(normalised, candidate) ? 1 : EditDistance(normalised, candidate);
                if (distance < bestDistance)
                {
                    best = candidate;
                    bestDistance = distance;
                }
            }
            return bestDistance <= Math.Max(2, written.Length / 3) ? best : null;
        }

        private static bool IsAbbreviation(string written, string candidate)
        {
            if (written.Length < 3 || written.Length >= candidate.Length || written[0] != candidate[0]) return false;
            int next = 0;
            foreach (char c in candidate)
                if (next < written.Length && written[next] == c) next++;
            return next == written.Length;
        }

        /// <summary>Levenshtein distance: insertions, deletions and substitutions.</summary>
        public static int EditDistance(string a, string b)
        {
            var previous = new int[b.Length + 1];
            var current = new int[b.Length + 1];
            for (int j = 0; j <= b.Length; j++) previous[j] = j;
            for (int i = 1; i <= a.Length; i++)
            {
                current[0] = i;
                for (int j = 1; j <= b.Length; j++)
                {
                    int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                    current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
                }
                int[] swap = previous;
                previous = current;
                current = swap;
            }
            return previous[b.Length];
        }

        /// <summary>A C# identifier as far as characters go (the generator also rejects keywords).</summary>
        public static bool IsIdentifier(string name) =>
            name.Length > 0 && (char.IsLetter(name[0]) || name[0] == '_') && name.All(c => char.IsLetterOrDigit(c) || c == '_');

        private static bool LooksLikeSpec(string text)
        {
            foreach (string line in text.Split('\n'))
                if (line.StartsWith("model:", StringComparison.Ordinal) || line.StartsWith("schedule:", StringComparison.Ordinal)) return true;
            return false;
        }

        /// <summary>YamlDotNet appends "(Line: x, Col: y, Idx: z)"; the diagnostic has its own location.</summary>
        private static string StripMark(string message)
        {
            int mark = message.IndexOf("(Line: ", StringComparison.Ordinal);
            return (mark > 0 ? message.Substring(0, mark) : message).Trim();
        }

        private static string Fnv1a(string text)
        {
            const ulong offset = 14695981039346656037UL, prime = 1099511628211UL;
            ulong hash = offset;
            foreach (byte b in Encoding.UTF8.GetBytes(text))
            {
                hash ^= b;
                hash *= prime;
            }
            return hash.ToString("x16", CultureInfo.InvariantCulture);
        }

        private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
        private static string R(double value) => value.ToString("R", CultureInfo.InvariantCulture);

        private enum Range { Any, Positive, NonNegative, UnitOpenAbove }

        /// <summary>Collects errors and locations while the sections are read.</summary>
        private sealed class Reader
        {
            private readonly TextMap map;

            public Reader(SpecDocument document, TextMap map)
            {
                Document = document;
                this.map = map;
            }

            public SpecDocument Document { get; }

            public SpecSpan Span(YamlNode node) => map.Span(node);

            public void Error(SpecErrorKind kind, string path, SpecSpan span, params string[] arguments) =>
                Document.Errors.Add(new SpecError(kind, path, span, arguments));

            /// <summary>Opens a mapping as a section: checks its keys against the table and the required ones.</summary>
            public Section Open(YamlMappingNode node, string path, YamlNode? key, string? table = null)
            {
                IReadOnlyList<SpecKey> keys = Sections[table ?? path];
                var entries = new Dictionary<string, KeyValuePair<YamlNode, YamlNode>>(StringComparer.Ordinal);
                var suggested = new HashSet<string>(StringComparer.Ordinal);
                string where = path.Length == 0 ? "the spec" : "'" + path + "'";
                foreach (KeyValuePair<YamlNode, YamlNode> pair in node.Children)
                {
                    string? name = (pair.Key as YamlScalarNode)?.Value;
                    if (name == null)
                    {
                        Error(SpecErrorKind.WrongType, path, Span(pair.Key), path.Length == 0 ? "(key)" : path + " (key)", "a plain key name", Shown(pair.Key));
                        continue;
                    }
                    if (!keys.Any(k => k.Name == name))
                    {
                        string? suggestion = Suggest(name, keys.Select(k => k.Name));
                        if (suggestion != null) suggested.Add(suggestion);
                        Error(SpecErrorKind.UnknownKey, Join(path, name), Span(pair.Key), name, where,
                              suggestion == null ? "" : $" (did you mean '{suggestion}'?)", string.Join(", ", keys.Select(k => k.Name)));
                        continue;
                    }
                    entries[name] = pair;
                    Document.Keys[Join(path, name)] = Span(pair.Key);
                    Document.Values[Join(path, name)] = Span(pair.Value);
                }
                SpecSpan at = key != null ? Span(key) : Span(node);
                // A misspelt required key is reported once, as the unknown key with its suggestion.
                foreach (SpecKey required in keys.Where(k => k.Required && !entries.ContainsKey(k.Name) && !suggested.Contains(k.Name)))
                    Error(SpecErrorKind.MissingKey, Join(path, required.Name), at, path.Length == 0 ? "The spec" : "'" + path + "'", required.Name, required.Description);
                return new Section(this, path, entries);
            }

            public static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;
        }

        /// <summary>The keys of one mapping, read with type checks; a wrong value leaves the default.</summary>
        private sealed class Section
        {
            private readonly Reader reader;
            private readonly Dictionary<string, KeyValuePair<YamlNode, YamlNode>> entries;

            public Section(Reader reader, string path, Dictionary<string, KeyValuePair<YamlNode, YamlNode>> entries)
            {
                this.reader = reader;
                this.entries = entries;
                Path = path;
            }

            public string Path { get; }

            public Section? Mapping(string key)
            {
                if (!entries.TryGetValue(key, out var pair)) return null;
                if (pair.Value is YamlMappingNode mapping) return reader.Open(mapping, Reader.Join(Path, key), pair.Key);
                WrongType(key, pair.Value, "a mapping (key: value lines or { key: value })");
                return null;
            }

            /// <summary>A list of mappings: entry i becomes section "path.key[i]" checked against <paramref name="table"/>.</summary>
            public IEnumerable<Section> MappingList(string key, string table)
            {
                var sections = new List<Section>();
                if (!entries.TryGetValue(key, out var pair)) return sections;
                if (!(pair.Value is YamlSequenceNode list))
                {
                    WrongType(key, pair.Value, "a list of mappings (- { key: value })");
                    return sections;
                }
                int i = 0;
                foreach (YamlNode item in list.Children)
                {
                    string path = $"{Reader.Join(Path, key)}[{i.ToString(CultureInfo.InvariantCulture)}]";
                    reader.Document.Values[path] = reader.Span(item);
                    if (item is YamlMappingNode mapping) sections.Add(reader.Open(mapping, path, null, table));
                    else
                    {
                        reader.Error(SpecErrorKind.WrongType, path, reader.Span(item), path, "a mapping ({ key: value })", Shown(item));
                        sections.Add(new Section(reader, path, new Dictionary<string, KeyValuePair<YamlNode, YamlNode>>()));
                    }
                    i++;
                }
                return sections;
            }

            public int Int(string key, int fallback, int min = int.MinValue)
            {
                YamlScalarNode? scalar = Scalar(key, "an integer");
                if (scalar == null) return fallback;
                if (!IsPlain(scalar) || !int.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
                    return WrongType(key, scalar, "an integer", fallback);
                if (value < min) return OutOfRange(key, scalar, ">= " + min.ToString(CultureInfo.InvariantCulture), fallback);
                return value;
            }

            public int? NullableInt(string key, int? fallback, int min)
            {
                if (!entries.TryGetValue(key, out var pair)) return fallback;
                if (pair.Value is YamlScalarNode scalar && IsPlain(scalar) && IsNull(scalar.Value)) return null;
                const int invalid = int.MinValue;
                int value = Int(key, invalid, min);
                return value == invalid ? fallback : value;
            }

            public long Long(string key, long fallback)
            {
                YamlScalarNode? scalar = Scalar(key, "an integer");
                if (scalar == null) return fallback;
                if (!IsPlain(scalar) || !long.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
                    return WrongType(key, scalar, "an integer", fallback);
                return value;
            }

            public double Double(string key, double fallback, Range range = Range.Any)
            {
                YamlScalarNode? scalar = Scalar(key, "a number");
                if (scalar == null) return fallback;
                if (!IsPlain(scalar) || !double.TryParse(scalar.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                    return WrongType(key, scalar, "a number", fallback);
                // "NaN", "Infinity" and "1e400" parse, but no setting takes them (YAML's .nan and .inf do not parse).
                if (double.IsNaN(value) || double.IsInfinity(value))
                    return WrongType(key, scalar, "a finite number", fallback);
                switch (range)
                {
                    case Range.Positive when !(value > 0): return OutOfRange(key, scalar, "> 0", fallback);
                    case Range.NonNegative when !(value >= 0): return OutOfRange(key, scalar, ">= 0", fallback);
                    case Range.UnitOpenAbove when !(value >= 0 && value < 1): return OutOfRange(key, scalar, "in [0, 1)", fallback);
                    default: return value;
                }
            }

            public bool Bool(string key, bool fallback)
            {
                YamlScalarNode? scalar = Scalar(key, "true or false");
                if (scalar == null) return fallback;
                if (IsPlain(scalar) && (scalar.Value == "true" || scalar.Value == "True" || scalar.Value == "TRUE")) return true;
                if (IsPlain(scalar) && (scalar.Value == "false" || scalar.Value == "False" || scalar.Value == "FALSE")) return false;
                return WrongType(key, scalar, "true or false", fallback);
            }

            public string String(string key, string fallback)
            {
                YamlScalarNode? scalar = Scalar(key, "a string");
                if (scalar == null) return fallback;
                string value = scalar.Value ?? "";
                if (IsPlain(scalar) && IsNull(value)) return WrongType(key, scalar, "a string", fallback);
                return value;
            }

            /// <summary>A C# identifier, or a dotted namespace name.</summary>
            public string Name(string key, string fallback, bool dotted)
            {
                YamlScalarNode? scalar = Scalar(key, "a name");
                if (scalar == null) return fallback;
                string value = scalar.Value ?? "";
                bool valid = dotted ? value.Split('.').All(IsIdentifier) : IsIdentifier(value);
                if (valid) return value;
                reader.Error(SpecErrorKind.InvalidName, Reader.Join(Path, key), reader.Span(scalar), Reader.Join(Path, key),
                             dotted ? "a namespace (C# identifiers joined by dots)" : "a C# identifier (a letter or '_', then letters, digits or '_')", value);
                return fallback;
            }

            public T Enum<T>(string key, T fallback, string[] names, T[] values)
            {
                YamlScalarNode? scalar = Scalar(key, "one of " + Or(names));
                if (scalar == null) return fallback;
                int index = Array.IndexOf(names, scalar.Value ?? "");
                if (index >= 0) return values[index];
                string? suggestion = Suggest(scalar.Value ?? "", names);
                reader.Error(SpecErrorKind.UnknownValue, Reader.Join(Path, key), reader.Span(scalar), Reader.Join(Path, key), scalar.Value ?? "",
                             suggestion == null ? "" : $" (did you mean '{suggestion}'?)", Or(names));
                return fallback;
            }

            public int[] IntList(string key, int[] fallback)
            {
                if (!entries.TryGetValue(key, out var pair)) return fallback;
                if (!(pair.Value is YamlSequenceNode list)) return WrongType(key, pair.Value, "a list of integers ([1, 2, 4])", fallback);
                var values = new List<int>();
                int i = 0;
                foreach (YamlNode item in list.Children)
                {
                    string path = $"{Reader.Join(Path, key)}[{i.ToString(CultureInfo.InvariantCulture)}]";
                    reader.Document.Values[path] = reader.Span(item);
                    if (item is YamlScalarNode scalar && IsPlain(scalar) && int.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
                        values.Add(value);
                    else
                    {
                        reader.Error(SpecErrorKind.WrongType, path, reader.Span(item), path, "an integer", Shown(item));
                        values.Add(1);
                    }
                    i++;
                }
                return values.ToArray();
            }

            private YamlScalarNode? Scalar(string key, string expected)
            {
                if (!entries.TryGetValue(key, out var pair)) return null;
                if (pair.Value is YamlScalarNode scalar) return scalar;
                WrongType(key, pair.Value, expected);
                return null;
            }

            private T WrongType<T>(string key, YamlNode value, string expected, T fallback)
            {
                WrongType(key, value, expected);
                return fallback;
            }

            private void WrongType(string key, YamlNode value, string expected) =>
                reader.Error(SpecErrorKind.WrongType, Reader.Join(Path, key), reader.Span(value), Reader.Join(Path, key), expected, Shown(value));

            private T OutOfRange<T>(string key, YamlScalarNode value, string range, T fallback)
            {
                reader.Error(SpecErrorKind.OutOfRange, Reader.Join(Path, key), reader.Span(value), Reader.Join(Path, key), range, value.Value ?? "");
                return fallback;
            }

            private static bool IsPlain(YamlScalarNode scalar) => scalar.Style == ScalarStyle.Plain || scalar.Style == ScalarStyle.Any;

            private static bool IsNull(string? value) => value == null || value.Length == 0 || value == "~" || value == "null" || value == "Null" || value == "NULL";

            private static string Or(string[] names) =>
                names.Length == 1 ? names[0] : string.Join(", ", names.Take(names.Length - 1)) + " or " + names[names.Length - 1];
        }

        /// <summary>
        /// Turns character offsets into spans with lines and columns. YamlDotNet marks a mapping or a
        /// list by its first token only, so a collection's span is extended here over its content
        /// (and a flow collection's closing bracket), so diagnostics underline all of `{ blocks: 1 }`.
        /// </summary>
        private sealed class TextMap
        {
            private readonly string text;
            private readonly List<int> lineStarts = new List<int> { 0 };

            public TextMap(string text)
            {
                this.text = text;
                for (int i = 0; i < text.Length; i++)
                {
                    if (text[i] == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                    if (text[i] == '\n' || text[i] == '\r') lineStarts.Add(i + 1);
                }
            }

            public SpecSpan Span(long start, long end)
            {
                int from = Clamp(start), to = Math.Max(from, Clamp(end));
                var (line, column) = Position(from);
                var (endLine, endColumn) = Position(to);
                return new SpecSpan(from, to, line, column, endLine, endColumn);
            }

            public SpecSpan Span(YamlNode node) => Span(node.Start.Index, End(node, new HashSet<YamlNode>(ReferenceComparer.Instance)));

            /// <summary>Where a node's text ends. Aliases can share nodes or make cycles, so each node is visited once.</summary>
            private long End(YamlNode node, HashSet<YamlNode> visited)
            {
                long end = Math.Max(node.Start.Index, node.End.Index);
                if (!visited.Add(node)) return end;
                bool flow;
                switch (node)
                {
                    case YamlMappingNode mapping:
                        foreach (KeyValuePair<YamlNode, YamlNode> pair in mapping.Children)
                            end = Math.Max(end, Math.Max(End(pair.Key, visited), End(pair.Value, visited)));
                        flow = mapping.Style == MappingStyle.Flow;
                        break;
                    case YamlSequenceNode sequence:
                        foreach (YamlNode item in sequence.Children) end = Math.Max(end, End(item, visited));
                        flow = sequence.Style == SequenceStyle.Flow;
                        break;
                    default:
                        return end;
                }
                if (!flow) return end;
                char close = node is YamlMappingNode ? '}' : ']';
                long i = Math.Max(end, node.Start.Index + 1); // past the opening bracket of an empty collection
                while (i < text.Length && (text[(int)i] == ' ' || text[(int)i] == ',' || text[(int)i] == '\t' || text[(int)i] == '\n' || text[(int)i] == '\r')) i++;
                return i < text.Length && text[(int)i] == close ? i + 1 : end;
            }

            private (int Line, int Column) Position(int offset)
            {
                int line = lineStarts.BinarySearch(offset);
                if (line < 0) line = ~line - 1;
                return (line + 1, offset - lineStarts[line] + 1);
            }

            private int Clamp(long value) => (int)Math.Max(0, Math.Min(text.Length, value));
        }

        /// <summary>Nodes by identity (YamlNode's own equality compares content, which recurses).</summary>
        private sealed class ReferenceComparer : IEqualityComparer<YamlNode>
        {
            public static readonly ReferenceComparer Instance = new ReferenceComparer();
            public bool Equals(YamlNode? x, YamlNode? y) => ReferenceEquals(x, y);
            public int GetHashCode(YamlNode node) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(node);
        }

        /// <summary>What was written where a value belongs, for "got ..." in messages.</summary>
        private static string Shown(YamlNode node)
        {
            switch (node)
            {
                case YamlMappingNode _: return "a mapping";
                case YamlSequenceNode _: return "a list";
                case YamlScalarNode scalar when scalar.Value == null || scalar.Value.Length == 0: return "nothing";
                case YamlScalarNode scalar:
                    string value = scalar.Value!.Length > 40 ? scalar.Value.Substring(0, 40) + "..." : scalar.Value;
                    return (scalar.Style == ScalarStyle.Plain ? "" : "the quoted string ") + "'" + value + "'";
                default: return "an alias";
            }
        }
    }
}
