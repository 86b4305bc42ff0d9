// Shared source: compiled into Ddpm.Runtime and linked into the generator, so the attributes, the
// YAML front end and the generator agree on every default.
namespace Ddpm
{
    /// <summary>The defaults of every declarable setting (the tutorial's values where it fixes one).</summary>
    public static class SpecDefaults
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
        public const Objective Objective = Ddpm.Objective.Eps;
        public const bool ClipX0 = false;
        /// <summary>0 = no dynamic thresholding.</summary>
        public const double DynamicThreshold = 0.0;
    }
}
