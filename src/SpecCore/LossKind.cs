#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore;
#else
namespace Ddpm;
#endif

/// <summary>Distance between the true and the predicted noise.</summary>
#if DDPM_GENERATOR
internal enum LossKind
#else
public enum LossKind
#endif
{
    /// <summary>Smooth L1 with delta 1 (the tutorial's choice).</summary>
    Huber = 0,
    L2 = 1,
    L1 = 2,
}
