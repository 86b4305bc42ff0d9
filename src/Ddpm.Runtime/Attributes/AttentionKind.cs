namespace Ddpm;

/// <summary>The attention layer of a U-Net stage.</summary>
public enum AttentionKind
{
    /// <summary>No attention layer: the stage has ResNet blocks only.</summary>
    None = 0,
    /// <summary>Linear attention (softmax over features and positions separately), cost linear in H*W.</summary>
    Linear = 1,
    /// <summary>Full multi-head softmax attention, cost quadratic in H*W.</summary>
    Full = 2,
}
