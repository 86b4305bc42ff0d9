namespace Ddpm.Conditioning;

/// <summary>Which predictions classifier-free guidance needs at a scale (<see cref="ClassifierFreeGuidance.Call"/>).</summary>
internal enum GuidanceCall
{
    /// <summary>Scale 1: the conditional prediction alone.</summary>
    Conditional,
    /// <summary>Scale 0: the null-class prediction alone.</summary>
    Unconditional,
    /// <summary>Any other scale: both, from one call on a doubled batch (conditional half first), then combined.</summary>
    Both,
}
