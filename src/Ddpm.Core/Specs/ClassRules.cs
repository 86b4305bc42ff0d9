// Spec core: the rules of class-conditional models. Part of Ddpm.Core (public, used by the runtime and Ddpm.Onnx alike)
// and compiled into the generator (internal).

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>The rules of a class-conditional model's settings (`model.classes`, `class_dropout`, `guidance`).</summary>
#if DDPM_GENERATOR
    internal static class ClassRules
#else
    public static class ClassRules
#endif
    {
        /// <summary>`model.classes`: at least 2 (leave it out for an unconditional model).</summary>
        public static readonly NumberRange Classes = NumberRange.AtLeast(2);
        /// <summary>`model.class_dropout`: the share of labels replaced by the null class while training, in [0, 1).</summary>
        public static readonly NumberRange ClassDropout = NumberRange.UnitOpenAbove;
        /// <summary>`model.guidance`, `--guidance`: the guidance scale, in [0, 100] (0 = the null class alone, 1 = no guidance;
        /// usual values are 1-10, and far beyond that the samples only saturate).</summary>
        public static readonly NumberRange Guidance = NumberRange.Between(0, 100);

        /// <summary>
        /// Guidance other than 1 extrapolates from the unconditional prediction, which only a model trained with some
        /// labels dropped to the null class has learned.
        /// </summary>
        public static bool GuidanceNeedsDropout(double guidance, double classDropout) => guidance != 1.0 && classDropout <= 0;
    }
}
