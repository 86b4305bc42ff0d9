// Spec core: the rules of the schedule section. Part of Ddpm.Core (public) and compiled into the generator (internal).

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>The rules of the `schedule:` section that are not about names.</summary>
#if DDPM_GENERATOR
    internal static class ScheduleRules
#else
    public static class ScheduleRules
#endif
    {
        /// <summary>`schedule.timesteps`, the number of diffusion steps T: &gt;= 1.</summary>
        public static readonly NumberRange Timesteps = NumberRange.AtLeast(1);
        /// <summary>beta_start and beta_end: variances of a step, strictly between 0 and 1 (not used by the cosine schedule).</summary>
        public static readonly NumberRange Beta = NumberRange.OpenUnit;
        /// <summary>`schedule.dynamic_threshold`: in [0, 1) (0 = off; a quantile p in (0, 1) otherwise).</summary>
        public static readonly NumberRange DynamicThreshold = NumberRange.UnitOpenAbove;

        /// <summary>The variances of the forward process grow with t: beta_start may not exceed beta_end.</summary>
        public static bool BetasGrow(double betaStart, double betaEnd) => betaStart <= betaEnd;
    }
}
