// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal), so the
// `training:` section of a YAML spec has one schema type, read at build time and at run time.
#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>Optimiser settings (`training.optimizer`).</summary>
#if DDPM_GENERATOR
    internal sealed class OptimizerSpec
#else
    public sealed class OptimizerSpec
#endif
    {
        /// <summary>Only Adam is supported (`adam`).</summary>
        public string Kind { get; set; } = "adam";
        /// <summary>The learning rate (`lr`); the linear warm-up climbs to it.</summary>
        public double Lr { get; set; } = 1e-3;
        /// <summary>Adam's first-moment decay (`beta1`), in [0, 1).</summary>
        public double Beta1 { get; set; } = 0.9;
        /// <summary>Adam's second-moment decay (`beta2`), in [0, 1).</summary>
        public double Beta2 { get; set; } = 0.999;
        /// <summary>Adam's L2 weight decay (`weight_decay`, added to the gradient as in torch.optim.Adam); 0 = none.</summary>
        public double WeightDecay { get; set; }

        /// <summary>A copy (every member is a value).</summary>
        public OptimizerSpec Clone() => (OptimizerSpec)MemberwiseClone();
    }

    /// <summary>Sample-quality evaluation during training (`training.eval`).</summary>
#if DDPM_GENERATOR
    internal sealed class EvalSpec
#else
    public sealed class EvalSpec
#endif
    {
        /// <summary>Evaluate every this many steps (0 = never).</summary>
        public int Every { get; set; }
        /// <summary>Images sampled per evaluation.</summary>
        public int Samples { get; set; } = 256;
        /// <summary>The sampler of the evaluation images (`sampler`): the project's default sampler (<see cref="SpecDefaults.Sampler"/>).</summary>
        public SamplerKind Sampler { get; set; } = SpecDefaults.Sampler;
        /// <summary>Sampler steps (DDIM and DPM-Solver++; DDPM always runs all T): <see cref="SpecDefaults.SamplerSteps"/>.</summary>
        public int Steps { get; set; } = SpecDefaults.SamplerSteps;

        /// <summary>A copy (every member is a value).</summary>
        public EvalSpec Clone() => (EvalSpec)MemberwiseClone();
    }

    /// <summary>How a model is trained (`training:`). Defaults are the tutorial's.</summary>
#if DDPM_GENERATOR
    internal sealed class TrainingSpec
#else
    public sealed class TrainingSpec
#endif
    {
        /// <summary>`fashion-mnist`, `mnist`, `idx:&lt;folder&gt;` (MNIST-style IDX files; `mnist-idx:&lt;folder&gt;` is the same), `cifar10:&lt;folder&gt;`, `images:&lt;folder&gt;`, or `synthetic`.</summary>
        public string Dataset { get; set; } = "fashion-mnist";
        /// <summary>Images per optimiser step (`batch_size`).</summary>
        public int BatchSize { get; set; } = 128;
        /// <summary>Number of passes over the data; ignored when Steps is set.</summary>
        public int Epochs { get; set; } = 6;
        /// <summary>Total optimiser steps; overrides Epochs when set.</summary>
        public int? Steps { get; set; }
        /// <summary>Distance between the objective's target (eps, x_0 or v) and the model's prediction (`loss`).</summary>
        public LossKind Loss { get; set; } = LossKind.Huber;
        /// <summary>The optimiser (`training.optimizer`).</summary>
        public OptimizerSpec Optimizer { get; set; } = new OptimizerSpec();
        /// <summary>Linear learning-rate warm-up over this many steps (0 = none).</summary>
        public int WarmupSteps { get; set; }
        /// <summary>Clip the global gradient norm to this value (0 = no clipping).</summary>
        public double GradClip { get; set; } = 1.0;
        /// <summary>Decay of the exponential moving average of the weights (0 = no EMA); the maximum the warm-up grows to.</summary>
        public double EmaDecay { get; set; } = 0.995;
        /// <summary>How the EMA decay grows to <see cref="EmaDecay"/>.</summary>
        public EmaWarmup EmaWarmup { get; set; } = EmaWarmup.Power;
        /// <summary>Exponent of the power warm-up: 1 - (1 + step / inv_gamma)^-power.</summary>
        public double EmaPower { get; set; } = 2.0 / 3.0;
        /// <summary>Step scale of the power warm-up.</summary>
        public double EmaInvGamma { get; set; } = 1.0;
        /// <summary>Min-SNR loss weighting (Hang et al. 2023): weights clipped at gamma (0 = off, uniform weights).</summary>
        public double MinSnrGamma { get; set; }
        /// <summary>Sample-quality evaluation during training (`training.eval`).</summary>
        public EvalSpec Eval { get; set; } = new EvalSpec();
        /// <summary>Flip training images horizontally at random (`random_flip`).</summary>
        public bool RandomFlip { get; set; } = true;
        /// <summary>Write an 8x8 sample grid every this many steps (0 = only at the end).</summary>
        public int SampleEvery { get; set; } = 1000;
        /// <summary>Write a checkpoint every this many steps (0 = none by steps; the front end may add time-based ones, and the last step always checkpoints).</summary>
        public int CheckpointEvery { get; set; } = 500;
        /// <summary>
        /// Where training also logs (`log`): `tensorboard` writes TensorBoard event files under the run folder's tensorboard/
        /// (<see cref="SpecYaml.LogValues"/>); empty = the run folder's own files only.
        /// </summary>
        public string[] Log { get; set; } = [];
        /// <summary>Seed of the run's randomness (`seed`): the trainer's timesteps and noise, the data order and flips (and, in `ddpm train`, the initial weights).</summary>
        public long Seed { get; set; }
        /// <summary>`fp32`, `bf16` or `fp16` (CUDA only; with dynamic loss scaling).</summary>
        public string Precision { get; set; } = "fp32";

        /// <summary>A deep copy, so command-line overrides never change a compiled model's defaults.</summary>
        public TrainingSpec Clone()
        {
            var copy = (TrainingSpec)MemberwiseClone();
            copy.Optimizer = Optimizer.Clone();
            copy.Eval = Eval.Clone();
            copy.Log = (string[])Log.Clone();
            return copy;
        }
    }
}
