namespace Ddpm.Diffusion;

/// <summary>Where the few-step samplers call the model, and the log-SNR they step in.</summary>
internal static class SamplerTimesteps
{
    /// <summary>The DDIM sub-sequence: <paramref name="steps"/> timesteps spaced evenly over [0, T), ascending, starting at 0.</summary>
    public static int[] Ddim(int timesteps, int steps)
    {
        var sequence = new int[steps];
        for (int i = 0; i < steps; i++)
            sequence[i] = (int)((long)i * timesteps / steps);
        return sequence;
    }

    /// <summary>lambda_t = log(alpha_t / sigma_t) = half the log-SNR, for every t (alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t)).</summary>
    public static double[] Lambdas(IReadOnlyList<double> alphasCumprod) => alphasCumprod.Select(Lambda).ToArray();

    private static double Lambda(double alphaBar) => 0.5 * Math.Log(alphaBar / (1 - alphaBar));

    /// <summary>
    /// DPM-Solver++'s timesteps, descending from T - 1 to 0, evenly spaced in lambda (the "logSNR" spacing Lu et al. 2022
    /// recommend for low-resolution images), each the nearest integer timestep, kept strictly decreasing. Evenly spaced t
    /// would leave one huge lambda step at the end (lambda climbs from 1.7 to 4.6 over the last 5% of a linear schedule),
    /// where the second-order extrapolation breaks down.
    /// </summary>
    /// <param name="lambdas">lambda_t for t = 0..T-1 (<see cref="Lambdas"/>).</param>
    /// <param name="steps">Model calls, 1..T.</param>
    public static int[] DpmSolver(IReadOnlyList<double> lambdas, int steps)
    {
        int timesteps = lambdas.Count;
        if (steps < 1 || steps > timesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"DPM-Solver++ steps must be in [1, {timesteps}].");
        var sequence = new int[steps];
        sequence[0] = timesteps - 1;
        if (steps == 1) return sequence;
        double first = lambdas[timesteps - 1], last = lambdas[0];
        int t = timesteps - 1; // lambda grows as t falls; walk t down while the next lambda is closer to the target
        for (int i = 1; i < steps; i++)
        {
            double target = first + (last - first) * i / (steps - 1);
            while (t > 0 && Math.Abs(lambdas[t - 1] - target) <= Math.Abs(lambdas[t] - target)) t--;
            // Strictly below the previous one, and high enough to leave a distinct timestep for every later call.
            sequence[i] = Math.Max(Math.Min(t, sequence[i - 1] - 1), steps - 1 - i);
        }
        return sequence;
    }
}
