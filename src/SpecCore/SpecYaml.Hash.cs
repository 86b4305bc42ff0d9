// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). The architecture hash of a spec's model and schedule.
using System;
using System.Globalization;
using System.Linq;
using System.Text;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    // The architecture hash.
    static partial class SpecYaml
    {
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
                // Only a conditional model has these lines, so unconditional specs keep their hashes. The guidance scale is a
                // sampling default, not part of what the model learns, and stays out.
                if (model.Classes != SpecDefaults.Classes)
                {
                    text.Append("model.classes=").Append(I(model.Classes)).Append('\n');
                    text.Append("model.class_dropout=").Append(R(model.ClassDropout ?? SpecDefaults.ClassDropout)).Append('\n');
                }
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
    }
}
