// Free of TorchSharp: compiled into Ddpm.Runtime (GaussianDiffusion) and into Ddpm.Onnx, so both sample at the same timesteps.
namespace Ddpm.Diffusion;

/// <summary>Where the few-step samplers call the model.</summary>
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

    /// <summary>
    /// DPM-Solver++'s timesteps, descending from T - 1 to 0, evenly spaced in lambda = log(alpha / sigma) (see
    /// GaussianDiffusion.DpmSolverTimesteps for why), each the nearest integer timestep, kept strictly decreasing.
    /// </summary>
    /// <param name="alphasCumprod">alpha_bar_t for t = 0..T-1.</param>
    /// <param name="steps">Model calls, 1..T.</param>
    public static int[] DpmSolver(IReadOnlyList<double> alphasCumprod, int steps)
    {
        int timesteps = alphasCumprod.Count;
        if (steps < 1 || steps > timesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"DPM-Solver++ steps must be in [1, {timesteps}].");
        double Lambda(int t) => 0.5 * Math.Log(alphasCumprod[t] / (1 - alphasCumprod[t]));
        var sequence = new int[steps];
        sequence[0] = timesteps - 1;
        if (steps == 1) return sequence;
        double first = Lambda(timesteps - 1), last = Lambda(0);
        int t = timesteps - 1; // lambda grows as t falls; walk t down while the next lambda is closer to the target
        for (int i = 1; i < steps; i++)
        {
            double target = first + (last - first) * i / (steps - 1);
            while (t > 0 && Math.Abs(Lambda(t - 1) - target) <= Math.Abs(Lambda(t) - target)) t--;
            // Strictly below the previous one, and high enough to leave a distinct timestep for every later call.
            sequence[i] = Math.Max(Math.Min(t, sequence[i - 1] - 1), steps - 1 - i);
        }
        return sequence;
    }
}
