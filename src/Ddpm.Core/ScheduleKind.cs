#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore;
#else
namespace Ddpm;
#endif

/// <summary>How the variances beta_1..beta_T of the forward process grow.</summary>
#if DDPM_GENERATOR
internal enum ScheduleKind
#else
public enum ScheduleKind
#endif
{
    /// <summary>beta linear from BetaStart to BetaEnd (Ho et al. 2020).</summary>
    Linear = 0,
    /// <summary>alpha_bar follows a squared cosine (Nichol and Dhariwal 2021), s = 0.008, betas clipped to [0.0001, 0.9999].</summary>
    Cosine = 1,
    /// <summary>sqrt(beta) linear from sqrt(BetaStart) to sqrt(BetaEnd).</summary>
    Quadratic = 2,
    /// <summary>beta = sigmoid(linspace(-6, 6)) scaled to [BetaStart, BetaEnd].</summary>
    Sigmoid = 3,
}
