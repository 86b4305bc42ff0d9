namespace Ddpm.Onnx;

/// <summary>
/// The noise schedule of an exported model, read from its metadata: the betas and alpha_bar exactly as the training
/// program computed them (float64, written round-trip), and the per-step quantities the samplers use, derived from them.
/// Indexed by timestep 0..T-1.
/// </summary>
public sealed class OnnxSchedule
{
    /// <summary>Builds the tables from the betas and alpha_bar of a model file.</summary>
    /// <param name="kind">The schedule's kind as the spec spells it (linear, cosine, quadratic, sigmoid) or "custom".</param>
    /// <param name="betas">beta_t, each in (0, 1).</param>
    /// <param name="alphasCumprod">alpha_bar_t = prod_{s &lt;= t} (1 - beta_s), as many as <paramref name="betas"/>.</param>
    /// <exception cref="ArgumentException">The tables are empty, of different lengths or out of range.</exception>
    public OnnxSchedule(string kind, double[] betas, double[] alphasCumprod)
    {
        ArgumentNullException.ThrowIfNull(betas);
        ArgumentNullException.ThrowIfNull(alphasCumprod);
        if (betas.Length == 0 || betas.Length != alphasCumprod.Length)
            throw new ArgumentException($"The schedule needs as many alpha_bar as betas, at least one: got {betas.Length} betas and {alphasCumprod.Length} alpha_bar.");
        for (int t = 0; t < betas.Length; t++)
            if (!(betas[t] > 0 && betas[t] < 1) || !(alphasCumprod[t] > 0 && alphasCumprod[t] < 1))
                throw new ArgumentException($"beta and alpha_bar must be in (0, 1); at t = {t} they are {betas[t]} and {alphasCumprod[t]}.");
        Kind = kind;
        Betas = betas;
        AlphasCumprod = alphasCumprod;
        int count = betas.Length;
        double[] signal = new double[count], noise = new double[count], recip = new double[count], posterior = new double[count];
        for (int t = 0; t < count; t++)
        {
            double previous = t > 0 ? alphasCumprod[t - 1] : 1.0;
            signal[t] = Math.Sqrt(alphasCumprod[t]);
            noise[t] = Math.Sqrt(1.0 - alphasCumprod[t]);
            recip[t] = Math.Sqrt(1.0 / (1.0 - betas[t]));
            // Variance of q(x_{t-1} | x_t, x_0), eq. (7) of Ho et al. 2020.
            posterior[t] = betas[t] * (1.0 - previous) / (1.0 - alphasCumprod[t]);
        }
        SqrtAlphasCumprod = signal;
        SqrtOneMinusAlphasCumprod = noise;
        SqrtRecipAlphas = recip;
        PosteriorVariance = posterior;
    }

    /// <summary>linear, cosine, quadratic or custom (as the exporter recognised the betas).</summary>
    public string Kind { get; }
    /// <summary>The number of diffusion steps T.</summary>
    public int Timesteps => Betas.Count;
    /// <summary>beta_t.</summary>
    public IReadOnlyList<double> Betas { get; }
    /// <summary>alpha_bar_t.</summary>
    public IReadOnlyList<double> AlphasCumprod { get; }
    /// <summary>sqrt(alpha_bar_t), the signal scale of x_t (eq. 4 of Ho et al. 2020).</summary>
    public IReadOnlyList<double> SqrtAlphasCumprod { get; }
    /// <summary>sqrt(1 - alpha_bar_t), the noise scale of x_t.</summary>
    public IReadOnlyList<double> SqrtOneMinusAlphasCumprod { get; }
    /// <summary>1 / sqrt(alpha_t), the scale of the posterior mean (eq. 11).</summary>
    public IReadOnlyList<double> SqrtRecipAlphas { get; }
    /// <summary>The variance of q(x_{t-1} | x_t, x_0) (eq. 7); 0 at t = 0.</summary>
    public IReadOnlyList<double> PosteriorVariance { get; }

    /// <summary>lambda_t = log(alpha_t / sigma_t), half the log-SNR.</summary>
    internal double Lambda(int t) => 0.5 * Math.Log(AlphasCumprod[t] / (1 - AlphasCumprod[t]));
}
