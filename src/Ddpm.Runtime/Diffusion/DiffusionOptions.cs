namespace Ddpm.Diffusion;

/// <summary>
/// How a model's output is read and how samplers treat the predicted x_0; declared on the schedule
/// (`[NoiseSchedule(Objective = ...)]`, `schedule.objective` in YAML), as diffusers keeps prediction_type on its scheduler.
/// </summary>
/// <param name="Objective">What the network predicts.</param>
/// <param name="ClipX0">Clip the predicted x_0 to the data range [-1, 1] at every sampling step (diffusers' clip_sample).</param>
/// <param name="DynamicThreshold">Dynamic thresholding (Saharia et al. 2022): the quantile p of |x_0| per image, in (0, 1); 0 = off.</param>
public sealed record DiffusionOptions(Objective Objective = Objective.Eps, bool ClipX0 = false, double DynamicThreshold = 0)
{
    /// <summary>Eps prediction with no clipping and no thresholding (Ho et al. 2020; the tutorial's setting).</summary>
    public static DiffusionOptions Default { get; } = new();
}
