// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal), so the attributes, the
// YAML front end and the generator agree on every default.
#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm
#endif
{
    /// <summary>The defaults of every declarable setting (the tutorial's values where it fixes one).</summary>
#if DDPM_GENERATOR
    internal static class SpecDefaults
#else
    public static class SpecDefaults
#endif
    {
        public const int Channels = 3;
        public const int ImageSize = 32;
        public const int Dim = 64;
        public static readonly int[] DimMults = { 1, 2, 4, 8 };
        public const int ResnetBlockGroups = 4;
        public const int StageBlocks = 2;
        public const AttentionKind StageAttention = AttentionKind.Linear;
        public const AttentionKind MidAttention = AttentionKind.Full;
        public const int Heads = 4;
        public const int DimHead = 32;
        public const int Timesteps = 1000;
        public const double BetaStart = 1e-4;
        public const double BetaEnd = 0.02;
        // The member's name hides the enum's inside this class; the namespace names the enum.
#if DDPM_GENERATOR
        public const Objective Objective = Generators.SpecCore.Objective.Eps;
#else
        public const Objective Objective = Ddpm.Objective.Eps;
#endif
        public const bool ClipX0 = false;
        /// <summary>0 = no dynamic thresholding.</summary>
        public const double DynamicThreshold = 0.0;
    }
}
