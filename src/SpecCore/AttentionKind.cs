#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore;
#else
namespace Ddpm;
#endif

/// <summary>The attention layer of a U-Net stage.</summary>
#if DDPM_GENERATOR
internal enum AttentionKind
#else
public enum AttentionKind
#endif
{
    /// <summary>No attention layer: the stage has ResNet blocks only.</summary>
    None = 0,
    /// <summary>Linear attention (softmax over features and positions separately), cost linear in H*W.</summary>
    Linear = 1,
    /// <summary>Full multi-head softmax attention, cost quadratic in H*W.</summary>
    Full = 2,
}
