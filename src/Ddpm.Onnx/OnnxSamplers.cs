using Ddpm.Diffusion;

namespace Ddpm.Onnx;

/// <summary>
/// DDPM, DDIM and DPM-Solver++(2M) (ODE and SDE) on float arrays, step for step as Ddpm.Runtime's GaussianDiffusion does them on tensors
/// (same timesteps, same coefficients in float64, the same order of noise draws), so the same noise gives the same images
/// up to float32 rounding and the difference between ONNX Runtime's and libtorch's kernels.
/// </summary>
internal sealed class OnnxSamplers
{
    private readonly OnnxDiffusionModel model;
    private readonly OnnxSchedule schedule;
    private readonly long[]? labels;
    private readonly double guidance;
    private readonly Action? step;

    /// <param name="model">The model.</param>
    /// <param name="labels">For a conditional model, the class of each image of the batch; null for an unconditional one.</param>
    /// <param name="guidance">The classifier-free guidance scale applied to the labelled predictions.</param>
    /// <param name="step">Called before every model call (progress, cancellation; it may throw to stop the draw).</param>
    public OnnxSamplers(OnnxDiffusionModel model, long[]? labels = null, double guidance = 1.0, Action? step = null)
    {
        this.step = step;
        this.model = model;
        schedule = model.Schedule;
        this.labels = labels;
        this.guidance = guidance;
    }

    /// <summary>Algorithm 2 of Ho et al. 2020: x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sigma_t z, no z at t = 0.</summary>
    public float[] Ddpm(int n, IGaussianNoise noise)
    {
        var x = Noise(n, noise);
        for (int t = schedule.Timesteps - 1; t >= 0; t--)
        {
            var (_, eps) = Predict(x, n, t);
            float epsCoefficient = (float)(schedule.Betas[t] / schedule.SqrtOneMinusAlphasCumprod[t]);
            float scale = (float)schedule.SqrtRecipAlphas[t];
            var next = new float[x.Length];
            for (int i = 0; i < x.Length; i++) next[i] = (x[i] - epsCoefficient * eps[i]) * scale;
            if (t > 0)
            {
                var z = Noise(n, noise);
                float sigma = (float)Math.Sqrt(schedule.PosteriorVariance[t]);
                for (int i = 0; i < x.Length; i++) next[i] += sigma * z[i];
            }
            x = next;
        }
        return x;
    }

    /// <summary>DDIM (Song et al. 2021, eq. 12): x_prev = sqrt(alpha_bar_prev) x_0 + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z.</summary>
    public float[] Ddim(int n, int steps, double eta, IGaussianNoise noise)
    {
        int[] sequence = SamplerTimesteps.Ddim(schedule.Timesteps, steps);
        var x = Noise(n, noise);
        for (int i = sequence.Length - 1; i >= 0; i--)
        {
            int t = sequence[i];
            double alphaBar = schedule.AlphasCumprod[t];
            double alphaBarPrev = i > 0 ? schedule.AlphasCumprod[sequence[i - 1]] : 1.0;
            var (x0, eps) = Predict(x, n, t);
            double sigma = eta * Math.Sqrt((1 - alphaBarPrev) / (1 - alphaBar) * (1 - alphaBar / alphaBarPrev));
            float a = (float)Math.Sqrt(alphaBarPrev), b = (float)Math.Sqrt(Math.Max(1 - alphaBarPrev - sigma * sigma, 0));
            var next = new float[x.Length];
            for (int j = 0; j < x.Length; j++) next[j] = x0[j] * a + b * eps[j];
            if (sigma > 0)
            {
                var z = Noise(n, noise);
                for (int j = 0; j < x.Length; j++) next[j] += (float)sigma * z[j];
            }
            x = next;
        }
        return x;
    }

    /// <summary>
    /// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): x_t = (sigma_t / sigma_s) x_s + alpha_t (1 - e^{-h}) D with D the
    /// x_0 prediction (first step) or (1 + 1/(2r)) D_s - 1/(2r) D_prev; the last call's prediction is the sample. With
    /// <paramref name="stochastic"/>, its SDE form: x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t (1 - e^{-2h}) D
    /// + sigma_t sqrt(1 - e^{-2h}) z, one draw of z after each model call but the last.
    /// </summary>
    public float[] DpmSolver2M(int n, int steps, IGaussianNoise noise, bool stochastic = false)
    {
        int[] times = SamplerTimesteps.DpmSolver(schedule.AlphasCumprod, steps);
        var x = Noise(n, noise);
        float[]? previousX0 = null;
        double previousH = 0;
        for (int i = 0; i < times.Length; i++)
        {
            int s = times[i];
            var (x0, _) = Predict(x, n, s);
            if (i == times.Length - 1) return x0; // to sigma = 0: the first-order step lands on the prediction
            int t = times[i + 1];
            double h = schedule.Lambda(t) - schedule.Lambda(s);
            var d = x0;
            if (previousX0 is not null)
            {
                double r = previousH / h;
                float current = (float)(1 + 0.5 / r), previous = (float)(-0.5 / r);
                d = new float[x0.Length];
                for (int j = 0; j < d.Length; j++) d[j] = x0[j] * current + previous * previousX0[j];
            }
            double sigmaRatio = schedule.SqrtOneMinusAlphasCumprod[t] / schedule.SqrtOneMinusAlphasCumprod[s];
            double decay = Math.Exp(-h), kept = 1 - decay * decay; // e^{-h} and 1 - e^{-2h}
            float xCoefficient = (float)(stochastic ? sigmaRatio * decay : sigmaRatio);
            float dCoefficient = (float)(schedule.SqrtAlphasCumprod[t] * (stochastic ? kept : 1 - decay));
            var next = new float[x.Length];
            for (int j = 0; j < x.Length; j++) next[j] = x[j] * xCoefficient + dCoefficient * d[j];
            if (stochastic)
            {
                var z = Noise(n, noise);
                float zCoefficient = (float)(schedule.SqrtOneMinusAlphasCumprod[t] * Math.Sqrt(kept));
                for (int j = 0; j < x.Length; j++) next[j] += zCoefficient * z[j];
            }
            previousH = h;
            previousX0 = x0;
            x = next;
        }
        return x;
    }

    /// <summary>
    /// The model's output at x_t read as (predicted x_0, predicted eps), as GaussianDiffusion.Predict does: with
    /// a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t), x_t = a x_0 + s eps; then x_0 clipped or thresholded if the
    /// model says so, and eps recomputed from it.
    /// </summary>
    internal (float[] X0, float[] Eps) Predict(float[] x, int n, int t)
    {
        step?.Invoke();
        var timesteps = new long[n];
        Array.Fill(timesteps, t);
        var output = model.GuidedPredict(x, timesteps, labels, guidance);
        float a = (float)schedule.SqrtAlphasCumprod[t], s = (float)schedule.SqrtOneMinusAlphasCumprod[t];
        var x0 = new float[x.Length];
        var eps = new float[x.Length];
        switch (model.Objective)
        {
            case "eps":
                for (int i = 0; i < x.Length; i++) { eps[i] = output[i]; x0[i] = (x[i] - s * output[i]) / a; }
                break;
            case "x0":
                for (int i = 0; i < x.Length; i++) { x0[i] = output[i]; eps[i] = (x[i] - a * output[i]) / s; }
                break;
            default: // v
                for (int i = 0; i < x.Length; i++) { x0[i] = x[i] * a - s * output[i]; eps[i] = x[i] * s + a * output[i]; }
                break;
        }
        if (model.ClipX0 || model.DynamicThreshold > 0)
        {
            if (model.DynamicThreshold > 0) DynamicThreshold(x0, n, model.DynamicThreshold);
            else for (int i = 0; i < x0.Length; i++) x0[i] = Math.Clamp(x0[i], -1f, 1f);
            for (int i = 0; i < x.Length; i++) eps[i] = (x[i] - a * x0[i]) / s;
        }
        return (x0, eps);
    }

    /// <summary>
    /// Dynamic thresholding (Saharia et al. 2022): per image, limit = max(1, the p-quantile of |x_0|, linearly interpolated
    /// as torch.quantile does); x_0 is clamped to [-limit, limit] and divided by limit.
    /// </summary>
    internal static void DynamicThreshold(float[] x0, int n, double quantile)
    {
        int length = x0.Length / n;
        var magnitudes = new float[length];
        for (int image = 0; image < n; image++)
        {
            var values = x0.AsSpan(image * length, length);
            for (int i = 0; i < length; i++) magnitudes[i] = Math.Abs(values[i]);
            Array.Sort(magnitudes);
            double position = quantile * (length - 1);
            int below = (int)Math.Floor(position), above = Math.Min(below + 1, length - 1);
            float limit = (float)(magnitudes[below] + (magnitudes[above] - magnitudes[below]) * (position - below));
            limit = Math.Max(limit, 1f);
            for (int i = 0; i < length; i++) values[i] = Math.Clamp(values[i], -limit, limit) / limit;
        }
    }

    private float[] Noise(int n, IGaussianNoise noise)
    {
        var values = new float[(long)n * model.ImageLength];
        noise.Fill(values);
        return values;
    }
}
