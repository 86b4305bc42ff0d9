#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore;
#else
namespace Ddpm;
#endif

/// <summary>How the EMA decay grows to its maximum (`training.ema_warmup`).</summary>
#if DDPM_GENERATOR
internal enum EmaWarmup
#else
public enum EmaWarmup
#endif
{
    /// <summary>decay_n = min(max, 1 - (1 + n / inv_gamma)^-power), diffusers' EMAModel warm-up.</summary>
    Power = 0,
    /// <summary>decay_n = min(max, (1 + n) / (10 + n)).</summary>
    Ratio = 1,
    /// <summary>decay_n = max from the first step.</summary>
    None = 2,
}
