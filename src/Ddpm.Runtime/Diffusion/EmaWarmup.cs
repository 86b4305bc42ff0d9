namespace Ddpm;

/// <summary>How the EMA decay grows to its maximum (`training.ema_warmup`).</summary>
public enum EmaWarmup
{
    /// <summary>decay_n = min(max, 1 - (1 + n / inv_gamma)^-power), diffusers' EMAModel warm-up.</summary>
    Power = 0,
    /// <summary>decay_n = min(max, (1 + n) / (10 + n)).</summary>
    Ratio = 1,
    /// <summary>decay_n = max from the first step.</summary>
    None = 2,
}
