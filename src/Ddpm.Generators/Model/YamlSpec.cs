using System;
using System.Linq;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators.Model
{
    /// <summary>
    /// What one YAML spec gives: the model and schedule results (the same SpecResult the attribute
    /// front end gives, so the same outputs handle them), the catalog entry when everything is valid,
    /// and the diagnostics of the rest of the file (YAML syntax, the root, the training section).
    /// </summary>
    internal sealed record YamlSpecResult(
        SpecResult<UNetSpec>? UNet,
        SpecResult<ScheduleSpec>? Schedule,
        CatalogSpec? Catalog,
        EquatableArray<DiagnosticInfo> Diagnostics,
        LocationInfo? ModelNameAt = null,
        LocationInfo? ScheduleNameAt = null)
    {
        /// <summary>A YAML file that is not a Ddpm spec: nothing to generate or report.</summary>
        public static readonly YamlSpecResult None = new YamlSpecResult(null, null, null, EquatableArray<DiagnosticInfo>.Empty);
    }

    /// <summary>
    /// The ModelCatalog registration of a spec's model: the generated types it points to, the spec's
    /// file name and architecture hash, and its training settings.
    /// </summary>
    /// <param name="Target">The registration class (namespace of the model).</param>
    /// <param name="ModelName">The model's class name, the catalog key.</param>
    /// <param name="ModelType">The generated model, global::-qualified.</param>
    /// <param name="ScheduleType">The generated schedule, global::-qualified.</param>
    /// <param name="Conditional">Whether the model takes class labels (its ClassConditioning joins the entry).</param>
    internal sealed record CatalogSpec(TypeTarget Target, string ModelName, string ModelType, string ScheduleType,
                                       string SpecFile, string ArchitectureHash, TrainingSettings Training, bool Conditional = false)
    {
        /// <summary>
        /// SpecYaml.ArchitectureHash of the validated model and schedule, whichever front end declared them: a spec file
        /// and attributes that declare the same architecture get the same hash (and their runs resume each other).
        /// </summary>
        public static string HashOf(UNetSpec unet, ScheduleSpec schedule)
        {
            var model = new ModelSection
            {
                Channels = unet.Channels, ImageSize = unet.ImageSize, Dim = unet.Dim, DimMults = unet.DimMults.ToArray(),
                ResnetBlockGroups = unet.ResnetBlockGroups, MidAttention = unet.MidAttention, Heads = unet.Heads, DimHead = unet.DimHead,
                Classes = unet.Classes, ClassDropout = unet.ClassDropout, Guidance = unet.Guidance,
            };
            foreach (StageSpec stage in unet.Stages)
                model.Stages.Add(new StageSection { Blocks = stage.Blocks, Attention = stage.Attention });
            var sections = new ScheduleSection
            {
                Kind = (ScheduleKind)schedule.Kind, Timesteps = schedule.Timesteps, BetaStart = schedule.BetaStart, BetaEnd = schedule.BetaEnd,
                Objective = (Objective)schedule.Objective, ClipX0 = schedule.ClipX0, DynamicThreshold = schedule.DynamicThreshold,
            };
            return SpecYaml.ArchitectureHash(model, sections);
        }
    }

    /// <summary>The shared TrainingSpec, compared by its canonical YAML (SpecWriter) so the pipeline caches it.</summary>
    internal sealed class TrainingSettings : IEquatable<TrainingSettings>
    {
        public TrainingSettings(TrainingSpec value)
        {
            Value = value;
            Canonical = SpecWriter.TrainingYaml(value);
        }

        public TrainingSpec Value { get; }
        public string Canonical { get; }

        public bool Equals(TrainingSettings? other) => other != null && other.Canonical == Canonical;
        public override bool Equals(object? obj) => Equals(obj as TrainingSettings);
        public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Canonical);
    }
}
