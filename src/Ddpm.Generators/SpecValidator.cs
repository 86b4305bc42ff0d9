using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Ddpm.Generators.Diagnostics;
using Ddpm.Generators.Model;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators
{
    /// <summary>
    /// The rules every declaration obeys, whichever front end produced it: turns a declaration into
    /// the validated spec, or into diagnostics located where the user wrote the offending value.
    /// </summary>
    internal static class SpecValidator
    {
        /// <summary>The most timesteps a schedule may have: each of its eight tables is written out as code.</summary>
        public const int MaxTimesteps = 10000;
        /// <summary>The most ResNet blocks a stage may have: each is a field, a constructor line and a forward line.</summary>
        public const int MaxStageBlocks = 64;

        public static SpecResult<UNetSpec> Validate(UNetDeclaration declaration, SpecSource source, IEnumerable<DiagnosticInfo> earlier)
        {
            var diagnostics = new List<DiagnosticInfo>(earlier);
            void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, string key, params object[] args) =>
                diagnostics.Add(DiagnosticInfo.Create(descriptor, source.Locate(key), args));

            CheckAtLeastOne(declaration.Channels, "channels");
            CheckAtLeastOne(declaration.ImageSize, "image_size");
            CheckAtLeastOne(declaration.ResnetBlockGroups, "resnet_block_groups");
            if (declaration.Dim < 4 || declaration.Dim % 2 != 0)
                Report(DiagnosticDescriptors.OddDim, "dim", source.Name("dim"), declaration.Dim);
            if (declaration.DimMults.Count == 0)
                Report(DiagnosticDescriptors.NoStages, "dim_mults", source.Name("dim_mults"));
            for (int i = 0; i < declaration.DimMults.Count; i++)
                CheckAtLeastOne(declaration.DimMults[i], $"dim_mults[{i}]");
            if (declaration.Heads < 1)
                Report(DiagnosticDescriptors.AttentionHeadsOutOfRange, "attention.heads", source.Name("attention.heads"), declaration.Heads);
            if (declaration.DimHead < 1)
                Report(DiagnosticDescriptors.AttentionHeadSizeOutOfRange, "attention.dim_head", source.Name("attention.dim_head"), declaration.DimHead);
            if (!IsAttentionKind(declaration.MidAttention))
                Report(DiagnosticDescriptors.UnknownAttentionKind, "mid.attention", declaration.MidAttention);

            // Stages: every index in range and stated once; unstated stages take the defaults.
            int stageCount = declaration.DimMults.Count;
            var stages = Enumerable.Range(0, stageCount).Select(_ => new StageSpec(SpecDefaults.StageBlocks, SpecDefaults.StageAttention)).ToArray();
            var seen = new HashSet<int>();
            for (int s = 0; s < declaration.Stages.Count; s++)
            {
                StageDeclaration stage = declaration.Stages[s];
                string key = $"stages[{s}]";
                if (stage.Index < 0 || stage.Index >= stageCount)
                {
                    if (stageCount > 0)
                        Report(DiagnosticDescriptors.StageIndexOutOfRange, key + ".index", stage.Index, stageCount, stageCount - 1, source.Name("dim_mults"));
                    continue;
                }
                if (!seen.Add(stage.Index))
                {
                    Report(DiagnosticDescriptors.StageIndexRepeated, key + ".index", stage.Index);
                    continue;
                }
                CheckAtLeastOne(stage.Blocks, key + ".blocks");
                if (stage.Blocks > MaxStageBlocks)
                    Report(DiagnosticDescriptors.TooLargeToGenerate, key + ".blocks", source.Name(key + ".blocks"), MaxStageBlocks, stage.Blocks);
                if (!IsAttentionKind(stage.Attention))
                    Report(DiagnosticDescriptors.UnknownAttentionKind, key + ".attention", stage.Attention);
                stages[stage.Index] = new StageSpec(stage.Blocks, (AttentionKind)stage.Attention);
            }

            // Architecture invariants, only once the sizes themselves are sane.
            if (diagnostics.Count == 0)
            {
                int groups = declaration.ResnetBlockGroups;
                var channels = new[] { declaration.Dim }.Concat(declaration.DimMults.Select(m => declaration.Dim * m)).ToArray();
                int bad = Array.FindIndex(channels, c => c % groups != 0);
                if (bad >= 0)
                {
                    // channels[0] is Dim itself (init conv, final block); channels[i + 1] is stage i.
                    string where = bad == 0 ? source.Name("dim") : $"Stage {bad - 1}";
                    Report(DiagnosticDescriptors.ChannelsNotDivisibleByGroups, "resnet_block_groups", where, channels[bad],
                           source.Name("resnet_block_groups"), groups, string.Join(", ", channels.Distinct()));
                }
                int downsamplings = stageCount - 1;
                int factor = 1 << Math.Min(downsamplings, 30);
                if (declaration.ImageSize % factor != 0)
                {
                    int suggestion = Math.Max(factor, (declaration.ImageSize + factor - 1) / factor * factor);
                    Report(DiagnosticDescriptors.ImageSizeNotDivisible, "image_size", source.Name("image_size"), declaration.ImageSize,
                           factor, downsamplings, suggestion);
                }
            }

            // Class conditioning: the number of classes, then dropout and guidance, which mean something only with classes.
            double classDropout = 0, guidance = SpecDefaults.Guidance;
            if (declaration.Classes == SpecDefaults.Classes)
            {
                if (declaration.ClassDropout != null)
                    Report(DiagnosticDescriptors.ClassSettingWithoutClasses, "class_dropout", source.Name("class_dropout"), source.Name("classes"));
                if (declaration.Guidance != null)
                    Report(DiagnosticDescriptors.ClassSettingWithoutClasses, "guidance", source.Name("guidance"), source.Name("classes"));
            }
            else
            {
                if (!ClassRules.Classes.Allows(declaration.Classes))
                    Report(DiagnosticDescriptors.ClassesOutOfRange, "classes", source.Name("classes"), declaration.Classes);
                classDropout = declaration.ClassDropout ?? SpecDefaults.ClassDropout;
                guidance = declaration.Guidance ?? SpecDefaults.Guidance;
                bool dropoutOk = ClassRules.ClassDropout.Allows(classDropout), guidanceOk = ClassRules.Guidance.Allows(guidance);
                if (!dropoutOk)
                    Report(DiagnosticDescriptors.ClassDropoutOutOfRange, "class_dropout", source.Name("class_dropout"), Format(classDropout));
                if (!guidanceOk)
                    Report(DiagnosticDescriptors.GuidanceOutOfRange, "guidance", source.Name("guidance"), Format(guidance));
                if (dropoutOk && guidanceOk && ClassRules.GuidanceNeedsDropout(guidance, classDropout))
                    Report(DiagnosticDescriptors.GuidanceWithoutDropout, "guidance", source.Name("guidance"), Format(guidance), source.Name("class_dropout"));
            }

            var result = diagnostics.Count == 0
                ? new UNetSpec(declaration.Target, declaration.Channels, declaration.ImageSize, declaration.Dim, declaration.DimMults,
                               declaration.ResnetBlockGroups, stages.ToEquatableArray(), (AttentionKind)declaration.MidAttention,
                               declaration.Heads, declaration.DimHead, declaration.Classes, classDropout, guidance)
                : null;
            return new SpecResult<UNetSpec>(result, diagnostics.ToEquatableArray());

            void CheckAtLeastOne(int value, string key)
            {
                if (value < 1) Report(DiagnosticDescriptors.SizeOutOfRange, key, source.Name(key), value);
            }
        }

        public static SpecResult<ScheduleSpec> Validate(ScheduleSpec schedule, SpecSource source, IEnumerable<DiagnosticInfo> earlier)
        {
            var diagnostics = new List<DiagnosticInfo>(earlier);
            void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, string key, params object[] args) =>
                diagnostics.Add(DiagnosticInfo.Create(descriptor, source.Locate(key), args));

            if (!Enum.IsDefined(typeof(ScheduleKind), schedule.Kind))
                Report(DiagnosticDescriptors.UnknownScheduleKind, "kind", schedule.Kind);
            if (!ScheduleRules.Timesteps.Allows(schedule.Timesteps))
                Report(DiagnosticDescriptors.TimestepsOutOfRange, "timesteps", source.Name("timesteps"), schedule.Timesteps);
            if (schedule.Timesteps > MaxTimesteps)
                Report(DiagnosticDescriptors.TooLargeToGenerate, "timesteps", source.Name("timesteps"), MaxTimesteps, schedule.Timesteps);
            if (schedule.Kind != (int)ScheduleKind.Cosine) // the cosine schedule has no beta range
            {
                bool startOk = CheckBeta(schedule.BetaStart, "beta_start");
                bool endOk = CheckBeta(schedule.BetaEnd, "beta_end");
                if (startOk && endOk && !ScheduleRules.BetasGrow(schedule.BetaStart, schedule.BetaEnd))
                    Report(DiagnosticDescriptors.BetaStartAfterEnd, "beta_start", source.Name("beta_start"), Format(schedule.BetaStart),
                           source.Name("beta_end"), Format(schedule.BetaEnd));
            }

            // What the model predicts and how the samplers treat the predicted x_0.
            if (!Enum.IsDefined(typeof(Objective), schedule.Objective))
                Report(DiagnosticDescriptors.UnknownObjective, "objective", schedule.Objective);
            double threshold = schedule.DynamicThreshold;
            if (!ScheduleRules.DynamicThreshold.Allows(threshold))
                Report(DiagnosticDescriptors.DynamicThresholdOutOfRange, "dynamic_threshold", source.Name("dynamic_threshold"), Format(threshold));
            else if (schedule.ClipX0 && threshold > 0)
                Report(DiagnosticDescriptors.ClipX0WithDynamicThreshold, "dynamic_threshold", source.Name("clip_x0"), source.Name("dynamic_threshold"));
            return new SpecResult<ScheduleSpec>(diagnostics.Count == 0 ? schedule : null, diagnostics.ToEquatableArray());

            bool CheckBeta(double beta, string key)
            {
                if (ScheduleRules.Beta.Allows(beta)) return true;
                Report(DiagnosticDescriptors.BetaOutOfRange, key, source.Name(key), Format(beta));
                return false;
            }
        }

        private static bool IsAttentionKind(int value) => Enum.IsDefined(typeof(AttentionKind), value);

        private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
    }
}
