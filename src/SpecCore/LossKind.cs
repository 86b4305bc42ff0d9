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
    /// <summary>Mean squared error (the loss of Ho et al. 2020's simplified objective).</summary>
    L2 = 1,
    /// <summary>Mean absolute error.</summary>
    L1 = 2,
}
