using Ddpm.Schedules;

namespace Ddpm.Diffusion;

/// <summary>
/// The per-step arithmetic of every sampler, written once: the timesteps where the model is called and, for each, the
/// coefficients of x, of the prediction, of fresh noise and the step's order (<see cref="SamplerStep"/>), in float64.
/// The TorchSharp scheduler (Ddpm.Runtime) and <see cref="SpanScheduler"/> (Ddpm.Onnx) only apply them.
/// </summary>
public sealed class SamplerPlan
{
    private SamplerPlan(SamplerKind kind, SamplerStep[] steps)
    {
        Kind = kind;
        Steps = steps;
        Timesteps = Array.AsReadOnly(steps.Select(s => s.Timestep).ToArray());
    }

    /// <summary>The sampler.</summary>
    public SamplerKind Kind { get; }
    /// <summary>The steps, in the order they run (timesteps descending).</summary>
    public IReadOnlyList<SamplerStep> Steps { get; }
    /// <summary>The timestep of each step: where the model is called.</summary>
    public IReadOnlyList<int> Timesteps { get; }

    /// <summary>
    /// The steps of <paramref name="kind"/>: DDPM runs all T timesteps and ignores <paramref name="steps"/>; DDIM and the
    /// DPM-Solver++ variants make <paramref name="steps"/> model calls.
    /// </summary>
    /// <param name="tables">The schedule.</param>
    /// <param name="kind">The sampler.</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++, 1..T.</param>
    /// <param name="eta">DDIM's eta (&gt;= 0): 0 is deterministic, 1 draws the DDPM posterior variance; unused by the others.</param>
    /// <exception cref="ArgumentOutOfRangeException">The steps or eta are out of range, or the sampler is unknown.</exception>
    public static SamplerPlan Create(ScheduleTables tables, SamplerKind kind, int steps, double eta = 0)
    {
        ArgumentNullException.ThrowIfNull(tables);
        return new SamplerPlan(kind, kind switch
        {
            SamplerKind.Ddpm => Enumerable.Range(0, tables.Timesteps).Reverse().Select(t => DdpmStep(tables, t)).ToArray(),
            SamplerKind.Ddim => Ddim(tables, steps, eta),
            SamplerKind.DpmSolver2M => DpmSolver2M(tables, steps, stochastic: false),
            SamplerKind.DpmSolver2MSde => DpmSolver2M(tables, steps, stochastic: true),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Use Ddpm, Ddim, DpmSolver2M or DpmSolver2MSde."),
        });
    }

    /// <summary>
    /// One ancestral step x_t -> x_{t-1} (Algorithm 2 of Ho et al. 2020) as the mean of q(x_{t-1} | x_t, x_0) at the
    /// predicted x_0 (eq. 7): posterior_mean_coef1 x_0 + posterior_mean_coef2 x_t, coef1 = beta_t sqrt(alpha_bar_{t-1}) /
    /// (1 - alpha_bar_t), coef2 = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t), plus sqrt(beta~_t) z for t &gt; 0.
    /// Equal to eq. 11 in exact arithmetic; unlike eq. 11 it never divides by sqrt(alpha_t) a difference of nearly equal
    /// numbers, which loses float32 digits where beta_t nears 1 (the last steps of the cosine schedule).
    /// </summary>
    public static SamplerStep DdpmStep(ScheduleTables tables, int t)
    {
        ArgumentNullException.ThrowIfNull(tables);
        if (t < 0 || t >= tables.Timesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"t must be in [0, {tables.Timesteps - 1}].");
        double previous = tables.AlphasCumprodPrev[t], remaining = 1 - tables.AlphasCumprod[t];
        double coef1 = tables.Betas[t] * Math.Sqrt(previous) / remaining;
        double coef2 = (1 - previous) * Math.Sqrt(tables.Alphas[t]) / remaining;
        double noise = t > 0 ? Math.Sqrt(tables.PosteriorVariance[t]) : 0;
        return new SamplerStep(t, 1, X: coef2, Data: coef1, Eps: 0, Noise: noise);
    }

    /// <summary>
    /// DDIM (Song et al. 2021, eq. 12): x_prev = sqrt(alpha_bar_prev) x_0 + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z,
    /// sigma = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) (1 - alpha_bar / alpha_bar_prev)), over
    /// <paramref name="steps"/> evenly spaced timesteps.
    /// </summary>
    private static SamplerStep[] Ddim(ScheduleTables tables, int steps, double eta)
    {
        if (steps < 1 || steps > tables.Timesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"DDIM steps must be in [1, {tables.Timesteps}].");
        if (!(eta >= 0))
            throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must be >= 0.");
        int[] sequence = SamplerTimesteps.Ddim(tables.Timesteps, steps);
        var plan = new SamplerStep[steps];
        for (int i = sequence.Length - 1; i >= 0; i--)
        {
            int t = sequence[i];
            double alphaBar = tables.AlphasCumprod[t];
            double alphaBarPrev = i > 0 ? tables.AlphasCumprod[sequence[i - 1]] : 1.0;
            double sigma = eta * Math.Sqrt((1 - alphaBarPrev) / (1 - alphaBar) * (1 - alphaBar / alphaBarPrev));
            plan[sequence.Length - 1 - i] = new SamplerStep(t, 1, X: 0, Data: Math.Sqrt(alphaBarPrev),
                                                            Eps: Math.Sqrt(Math.Max(1 - alphaBarPrev - sigma * sigma, 0)), Noise: sigma);
        }
        return plan;
    }

    /// <summary>
    /// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): with alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t),
    /// h = lambda_t - lambda_s, x_t = (sigma_t / sigma_s) x_s + alpha_t (1 - e^{-h}) D, D the x_0 prediction at the first
    /// step and (1 + 1/(2r)) D_s - 1/(2r) D_prev (r = h_prev / h) after it. Its SDE form: x_t = (sigma_t / sigma_s) e^{-h} x_s
    /// + alpha_t (1 - e^{-2h}) D + sigma_t sqrt(1 - e^{-2h}) z. The last call is at t = 0 and its prediction is the sample
    /// (the first-order step to sigma = 0 lands on D).
    /// </summary>
    private static SamplerStep[] DpmSolver2M(ScheduleTables tables, int steps, bool stochastic)
    {
        double[] lambdas = SamplerTimesteps.Lambdas(tables.AlphasCumprod);
        int[] times = SamplerTimesteps.DpmSolver(lambdas, steps);
        var plan = new SamplerStep[times.Length];
        double previousH = 0;
        for (int i = 0; i < times.Length; i++)
        {
            int s = times[i];
            if (i == times.Length - 1)
            {
                plan[i] = new SamplerStep(s, 1, X: 0, Data: 1, Eps: 0, Noise: 0);
                break;
            }
            int t = times[i + 1];
            double h = lambdas[t] - lambdas[s];
            double sigmaRatio = tables.SqrtOneMinusAlphasCumprod[t] / tables.SqrtOneMinusAlphasCumprod[s];
            double decay = Math.Exp(-h), kept = 1 - decay * decay; // e^{-h} and 1 - e^{-2h}
            double x = stochastic ? sigmaRatio * decay : sigmaRatio;
            double data = tables.SqrtAlphasCumprod[t] * (stochastic ? kept : 1 - decay);
            double noise = stochastic ? tables.SqrtOneMinusAlphasCumprod[t] * Math.Sqrt(kept) : 0;
            if (i == 0)
                plan[i] = new SamplerStep(s, 1, x, data, 0, noise);
            else
            {
                double r = previousH / h;
                plan[i] = new SamplerStep(s, 2, x, data, 0, noise, CurrentX0: 1 + 0.5 / r, PreviousX0: -0.5 / r);
            }
            previousH = h;
        }
        return plan;
    }
}
