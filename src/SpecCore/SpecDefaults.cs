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
        /// <summary>Image channels: 3 (RGB).</summary>
        public const int Channels = 3;
        /// <summary>Image height and width in pixels: 32.</summary>
        public const int ImageSize = 32;
        /// <summary>Base channel count of the U-Net: 64.</summary>
        public const int Dim = 64;
        /// <summary>Channel multipliers of the four stages: 1, 2, 4, 8 (one shared array: copy it, never change it).</summary>
        public static readonly int[] DimMults = { 1, 2, 4, 8 };
        /// <summary>GroupNorm groups in every ResNet block: 4.</summary>
        public const int ResnetBlockGroups = 4;
        /// <summary>ResNet blocks per down stage: 2.</summary>
        public const int StageBlocks = 2;
        /// <summary>Attention of every down and up stage: linear.</summary>
        public const AttentionKind StageAttention = AttentionKind.Linear;
        /// <summary>Attention of the bottleneck: full softmax attention.</summary>
        public const AttentionKind MidAttention = AttentionKind.Full;
        /// <summary>Heads of every attention layer: 4.</summary>
        public const int Heads = 4;
        /// <summary>Channels per attention head: 32.</summary>
        public const int DimHead = 32;
        /// <summary>Diffusion steps T: 1000 (Ho et al. 2020).</summary>
        public const int Timesteps = 1000;
        /// <summary>beta at t = 0 of the linear, quadratic and sigmoid schedules: 1e-4 (Ho et al. 2020).</summary>
        public const double BetaStart = 1e-4;
        /// <summary>beta at t = T - 1 of the linear, quadratic and sigmoid schedules: 0.02 (Ho et al. 2020).</summary>
        public const double BetaEnd = 0.02;
        /// <summary>The model predicts the noise eps.</summary>
        // The member's name hides the enum's inside this class; the namespace names the enum.
#if DDPM_GENERATOR
        public const Objective Objective = Generators.SpecCore.Objective.Eps;
#else
        public const Objective Objective = Ddpm.Objective.Eps;
#endif
        /// <summary>The predicted x_0 is not clipped while sampling.</summary>
        public const bool ClipX0 = false;
        /// <summary>0 = no dynamic thresholding.</summary>
        public const double DynamicThreshold = 0.0;
        /// <summary>0 classes: the model is unconditional.</summary>
        public const int Classes = 0;
        /// <summary>Share of training labels replaced by the null class, so one model also learns the unconditional
        /// prediction that classifier-free guidance needs: 0.1 (Ho and Salimans 2022 found 0.1-0.2 best).</summary>
        public const double ClassDropout = 0.1;
        /// <summary>Guidance scale of sampling: 1 = the conditional model alone, no guidance.</summary>
        public const double Guidance = 1.0;

        /// <summary>
        /// The sampler wherever none is named: <c>ddpm sample</c>, <c>ddpm eval</c>, the grids of <c>ddpm train</c>, a spec's
        /// <c>training.eval</c>, <c>DiffusionModel</c>'s Sample, SampleGrid and Evaluate. SDE-DPM-Solver++(2M), chosen by
        /// measurement: at 20 model calls it scored FID 21.95 against 22.41 for DDPM's 300 ancestral steps (n = 1000, one
        /// epoch of specs/fashion-mnist.yaml, docs/quality.md), in 15x fewer model calls.
        /// </summary>
        public const SamplerKind Sampler = SamplerKind.DpmSolver2MSde;
        /// <summary>Model calls of <see cref="Sampler"/>: 20 (fewer when the schedule has fewer timesteps; <see cref="SamplerStepsFor"/>).</summary>
        public const int SamplerSteps = 20;

        /// <summary>The default model calls for a schedule of <paramref name="timesteps"/> steps: <see cref="SamplerSteps"/>, at most T.</summary>
        public static int SamplerStepsFor(int timesteps) => timesteps < SamplerSteps ? System.Math.Max(1, timesteps) : SamplerSteps;
    }
}
