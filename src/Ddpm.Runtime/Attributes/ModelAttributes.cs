namespace Ddpm;

/// <summary>
/// Declares a U-Net (the tutorial's architecture). The source generator turns the partial class
/// into a TorchSharp module mapping (noisy images [B, C, H, W], timesteps [B]) to predicted noise.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class UNetAttribute : Attribute
{
    /// <summary>Image channels (1 for grayscale, 3 for RGB).</summary>
    public int Channels { get; set; } = SpecDefaults.Channels;
    /// <summary>Height and width of the (square) images.</summary>
    public int ImageSize { get; set; } = SpecDefaults.ImageSize;
    /// <summary>Base channel count; stage i has Dim * DimMults[i] channels.</summary>
    public int Dim { get; set; } = SpecDefaults.Dim;
    /// <summary>Channel multiplier per stage; one stage per entry, a downsampling between stages.</summary>
    public int[] DimMults { get; set; } = (int[])SpecDefaults.DimMults.Clone();
    /// <summary>GroupNorm groups in every ResNet block.</summary>
    public int ResnetBlockGroups { get; set; } = SpecDefaults.ResnetBlockGroups;
    /// <summary>
    /// The model's <see cref="NoiseScheduleAttribute"/> class. With it the model joins the model catalog, so `ddpm train`
    /// and `ddpm sample` know it by name (it trains with the default training settings plus the command's options);
    /// without it the class is a module only.
    /// </summary>
    public Type? Schedule { get; set; }
    /// <summary>
    /// Classes of a class-conditional model (at least 2): the generated module gets a learned class embedding, with a null
    /// class at index <c>Classes</c>, added to the time embedding, and a forward that takes the labels. 0 (the default) = unconditional.
    /// </summary>
    public int Classes { get; set; } = SpecDefaults.Classes;
    /// <summary>Share of training labels replaced by the null class, in [0, 1) (default 0.1); needs <see cref="Classes"/>.</summary>
    public double ClassDropout { get; set; } = SpecDefaults.ClassDropout;
    /// <summary>The classifier-free guidance scale sampling uses by default (1 = none, the default); needs <see cref="Classes"/>.</summary>
    public double Guidance { get; set; } = SpecDefaults.Guidance;
}

/// <summary>Overrides down stage <c>Index</c> (and its mirror on the up path).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DownStageAttribute : Attribute
{
    /// <summary>Declares the overrides of stage <paramref name="index"/>.</summary>
    /// <param name="index">0-based stage index, below the number of <see cref="UNetAttribute.DimMults"/> entries.</param>
    public DownStageAttribute(int index) => Index = index;
    /// <summary>The 0-based stage this attribute overrides.</summary>
    public int Index { get; }
    /// <summary>ResNet blocks in the stage (default 2).</summary>
    public int Blocks { get; set; } = SpecDefaults.StageBlocks;
    /// <summary>The stage's attention layer (default linear).</summary>
    public AttentionKind Attention { get; set; } = SpecDefaults.StageAttention;
}

/// <summary>The bottleneck between the down and the up path.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class MidStageAttribute : Attribute
{
    /// <summary>The bottleneck's attention layer (default full).</summary>
    public AttentionKind Attention { get; set; } = SpecDefaults.MidAttention;
}

/// <summary>Heads and head size of every attention layer of the model.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class AttentionAttribute : Attribute
{
    /// <summary>Attention heads (default 4).</summary>
    public int Heads { get; set; } = SpecDefaults.Heads;
    /// <summary>Channels per attention head (default 32).</summary>
    public int DimHead { get; set; } = SpecDefaults.DimHead;
}

/// <summary>
/// Declares a noise schedule. The generator computes its tables at compile time in float64 and
/// emits them as constant data together with DDPM, DDIM and DPM-Solver++ samplers bound to them.
/// The schedule also says what the model predicts and how samplers treat the predicted x_0
/// (diffusers keeps prediction_type, clip_sample and thresholding on its scheduler too).
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class NoiseScheduleAttribute : Attribute
{
    /// <summary>Declares a schedule of the given kind.</summary>
    /// <param name="kind">How the betas grow.</param>
    public NoiseScheduleAttribute(ScheduleKind kind) => Kind = kind;
    /// <summary>How the betas grow over the steps.</summary>
    public ScheduleKind Kind { get; }
    /// <summary>The number of diffusion steps T (default 1000).</summary>
    public int Timesteps { get; set; } = SpecDefaults.Timesteps;
    /// <summary>beta at t = 0 (default 1e-4); not used by the cosine schedule.</summary>
    public double BetaStart { get; set; } = SpecDefaults.BetaStart;
    /// <summary>beta at t = T - 1 (default 0.02); not used by the cosine schedule.</summary>
    public double BetaEnd { get; set; } = SpecDefaults.BetaEnd;
    /// <summary>What the model predicts: the noise eps (default), x_0 or the velocity v.</summary>
    public Objective Objective { get; set; } = SpecDefaults.Objective;
    /// <summary>Clip the predicted x_0 to [-1, 1] at every sampling step; not together with <see cref="DynamicThreshold"/>.</summary>
    public bool ClipX0 { get; set; } = SpecDefaults.ClipX0;
    /// <summary>Dynamic thresholding (Saharia et al. 2022): the quantile p of |x_0| per image, in (0, 1), e.g. 0.995; 0 = off.</summary>
    public double DynamicThreshold { get; set; } = SpecDefaults.DynamicThreshold;
}
