// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). Reading a spec's text into a SpecDocument, section by section.
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
    // Reading: text -> SpecDocument.
    static partial class SpecYaml
    {
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
            // Any integer and any finite numbers: the ranges, and how the three go together, are SpecValidator's (DDPM021-025),
            // as for the attributes.
            // A value already in error (not a number) counts as not written, so it is reported once, not again as DDPM025.
            model.Classes = s.Int("classes", model.Classes);
            model.ClassDropout = s.Contains("class_dropout") && s.Double("class_dropout", double.NaN) is var dropout && !double.IsNaN(dropout) ? dropout : null;
            model.Guidance = s.Contains("guidance") && s.Double("guidance", double.NaN) is var guidance && !double.IsNaN(guidance) ? guidance : null;
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
            t.BatchSize = s.Int("batch_size", t.BatchSize, TrainingRules.BatchSize);
            t.Epochs = s.Int("epochs", t.Epochs, TrainingRules.Epochs);
            t.Steps = s.NullableInt("steps", t.Steps, TrainingRules.Steps);
            t.Loss = s.Enum("loss", t.Loss, LossValues, new[] { LossKind.Huber, LossKind.L2, LossKind.L1 });
            t.MinSnrGamma = s.Double("min_snr_gamma", t.MinSnrGamma, TrainingRules.MinSnrGamma);
            Section? optimizer = s.Mapping("optimizer");
            if (optimizer != null)
            {
                OptimizerSpec o = t.Optimizer;
                o.Kind = optimizer.Enum("kind", o.Kind, OptimizerValues, OptimizerValues);
                o.Lr = optimizer.Double("lr", o.Lr, TrainingRules.Lr);
                o.Beta1 = optimizer.Double("beta1", o.Beta1, TrainingRules.Beta);
                o.Beta2 = optimizer.Double("beta2", o.Beta2, TrainingRules.Beta);
                o.WeightDecay = optimizer.Double("weight_decay", o.WeightDecay, TrainingRules.WeightDecay);
            }
            t.WarmupSteps = s.Int("warmup_steps", t.WarmupSteps, TrainingRules.WarmupSteps);
            t.GradClip = s.Double("grad_clip", t.GradClip, TrainingRules.GradClip);
            t.EmaDecay = s.Double("ema_decay", t.EmaDecay, TrainingRules.EmaDecay);
            t.EmaWarmup = s.Enum("ema_warmup", t.EmaWarmup, EmaWarmupValues, new[] { EmaWarmup.Power, EmaWarmup.Ratio, EmaWarmup.None });
            t.EmaPower = s.Double("ema_power", t.EmaPower, TrainingRules.EmaPower);
            t.EmaInvGamma = s.Double("ema_inv_gamma", t.EmaInvGamma, TrainingRules.EmaInvGamma);
            t.RandomFlip = s.Bool("random_flip", t.RandomFlip);
            t.SampleEvery = s.Int("sample_every", t.SampleEvery, TrainingRules.SampleEvery);
            t.CheckpointEvery = s.Int("checkpoint_every", t.CheckpointEvery, TrainingRules.CheckpointEvery);
            Section? eval = s.Mapping("eval");
            if (eval != null)
            {
                EvalSpec e = t.Eval;
                e.Every = eval.Int("every", e.Every, TrainingRules.EvalEvery);
                e.Samples = eval.Int("samples", e.Samples, TrainingRules.EvalSamples);
                e.Sampler = eval.Enum("sampler", e.Sampler, SamplerValues, new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmSolver2M, SamplerKind.DpmSolver2MSde });
                e.Steps = eval.Int("steps", e.Steps, TrainingRules.EvalSteps);
            }
            t.Log = s.EnumList("log", t.Log, LogValues);
            t.Seed = s.Long("seed", t.Seed);
            t.Precision = s.Enum("precision", t.Precision, PrecisionValues, PrecisionValues);
            return t;
        }


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
    }
}
