#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore;
#else
namespace Ddpm;
#endif

/// <summary>
/// What the network predicts from (x_t, t). Every sampler converts the prediction to the same pair
/// (predicted x_0, predicted eps), so any objective works with any sampler.
/// </summary>
#if DDPM_GENERATOR
internal enum Objective
#else
public enum Objective
#endif
{
    /// <summary>The added noise eps (Ho et al. 2020; the tutorial's choice).</summary>
    Eps = 0,
    /// <summary>The clean image x_0.</summary>
    X0 = 1,
    /// <summary>The velocity v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans and Ho 2022).</summary>
    V = 2,
}
