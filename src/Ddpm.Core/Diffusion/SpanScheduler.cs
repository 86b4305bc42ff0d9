using Ddpm.Schedules;

namespace Ddpm.Diffusion;

/// <summary>
/// A sampler as a scheduler, on float arrays (the shape diffusers users know): <see cref="SetTimesteps"/>, then for each
/// t of <see cref="Timesteps"/> call the model and <see cref="Step"/>; <see cref="AddNoise"/> is the forward process.
/// The coefficients come from <see cref="SamplerPlan"/>; this class only applies them, in float32, as the TorchSharp
/// scheduler of Ddpm.Runtime applies them to tensors. It keeps the previous x_0 for DPM-Solver++(2M), so one instance
/// runs one chain at a time.
/// <code>
/// var scheduler = new SpanScheduler(tables, SamplerKind.DpmSolver2M, Objective.Eps, imageLength: 784);
/// scheduler.SetTimesteps(20);
/// foreach (int t in scheduler.Timesteps)
///     x = scheduler.Step(model(x, t), t, x, noise.Fill).Prev;
/// </code>
/// </summary>
public sealed class SpanScheduler
{
    private readonly ScheduleTables tables;
    private readonly double eta;
    private SamplerPlan? plan;
    private int next;
    private float[]? previousX0;

    /// <summary>A scheduler for <paramref name="kind"/> under a schedule, for a model with the given objective and x_0 treatment.</summary>
    /// <param name="tables">The schedule the model was trained with.</param>
    /// <param name="kind">The sampler.</param>
    /// <param name="objective">What the model predicts.</param>
    /// <param name="imageLength">Values per image (C * H * W): dynamic thresholding works per image.</param>
    /// <param name="clipX0">Clip the predicted x_0 to [-1, 1].</param>
    /// <param name="dynamicThreshold">The quantile of dynamic thresholding, in (0, 1); 0 for none.</param>
    /// <param name="eta">DDIM's eta (&gt;= 0).</param>
    public SpanScheduler(ScheduleTables tables, SamplerKind kind, Objective objective, int imageLength, bool clipX0 = false,
                         double dynamicThreshold = 0, double eta = 0)
    {
        this.tables = tables ?? throw new ArgumentNullException(nameof(tables));
        if (imageLength < 1) throw new ArgumentOutOfRangeException(nameof(imageLength), imageLength, "imageLength must be >= 1.");
        Kind = kind;
        Objective = objective;
        ImageLength = imageLength;
        ClipX0 = clipX0;
        DynamicThreshold = dynamicThreshold;
        this.eta = eta;
    }

    /// <summary>The sampler.</summary>
    public SamplerKind Kind { get; }
    /// <summary>What the model predicts.</summary>
    public Objective Objective { get; }
    /// <summary>Values per image.</summary>
    public int ImageLength { get; }
    /// <summary>Whether the predicted x_0 is clipped to [-1, 1].</summary>
    public bool ClipX0 { get; }
    /// <summary>The quantile of dynamic thresholding; 0 = off.</summary>
    public double DynamicThreshold { get; }

    /// <summary>Where the model is called, in order (empty until <see cref="SetTimesteps"/>).</summary>
    public IReadOnlyList<int> Timesteps => plan?.Timesteps ?? Array.Empty<int>();

    /// <summary>Plans <paramref name="count"/> model calls (DDPM always makes T) and starts a new chain.</summary>
    /// <exception cref="ArgumentOutOfRangeException">count or eta is out of range for the sampler.</exception>
    public void SetTimesteps(int count)
    {
        plan = SamplerPlan.Create(tables, Kind, count, eta);
        next = 0;
        previousX0 = null;
    }

    /// <summary>
    /// One step from x_t to the next x: the model's output at t read as (x_0, eps), x_0 treated, then the plan's
    /// coefficients applied. <paramref name="noise"/> fills fresh standard normal noise when the step draws some.
    /// </summary>
    /// <param name="modelOutput">The model's prediction at (x, t), [N, C, H, W] row-major.</param>
    /// <param name="t">The timestep: the next entry of <see cref="Timesteps"/>.</param>
    /// <param name="x">x_t, as many values as <paramref name="modelOutput"/>.</param>
    /// <param name="noise">Fills a span with N(0, 1) draws; needed by the steps that draw noise.</param>
    /// <returns>The next x and the predicted x_0 (as treated).</returns>
    /// <exception cref="InvalidOperationException">No <see cref="SetTimesteps"/>, the chain is over, or t is not the next timestep.</exception>
    public (float[] Prev, float[] PredictedX0) Step(ReadOnlySpan<float> modelOutput, int t, ReadOnlySpan<float> x, Action<Span<float>>? noise = null)
    {
        var step = NextStep(t);
        if (modelOutput.Length != x.Length || x.Length == 0 || x.Length % ImageLength != 0)
            throw new ArgumentException($"Expected x and the model output as whole images of {ImageLength} values each, got {x.Length} and {modelOutput.Length}.", nameof(x));
        var (x0, eps) = Predict(modelOutput, x, t);
        var d = x0;
        if (step.Order == 2 && previousX0 is not null)
        {
            d = new float[x0.Length];
            float current = (float)step.CurrentX0, previous = (float)step.PreviousX0;
            for (int j = 0; j < d.Length; j++) d[j] = x0[j] * current + previous * previousX0[j];
        }
        var result = new float[x.Length];
        bool started = false;
        Add(result, x, step.X, ref started);
        Add(result, d, step.Data, ref started);
        Add(result, eps, step.Eps, ref started);
        if (step.Noise != 0)
        {
            if (noise is null) throw new ArgumentNullException(nameof(noise), $"The {Kind} step at t = {t} draws noise: pass a noise source.");
            var z = new float[x.Length];
            noise(z);
            Add(result, z, step.Noise, ref started);
        }
        previousX0 = x0;
        next++;
        return (result, x0);
    }

    /// <summary>x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise (eq. 4 of Ho et al. 2020).</summary>
    public float[] AddNoise(ReadOnlySpan<float> x0, ReadOnlySpan<float> noise, int t)
    {
        if (t < 0 || t >= tables.Timesteps) throw new ArgumentOutOfRangeException(nameof(t), t, $"t must be in [0, {tables.Timesteps - 1}].");
        if (noise.Length != x0.Length) throw new ArgumentException($"noise has {noise.Length} values, x0 {x0.Length}.", nameof(noise));
        var result = new float[x0.Length];
        Apply(ObjectiveForms.AddNoise(tables.SqrtAlphasCumprod[t], tables.SqrtOneMinusAlphasCumprod[t]), x0, noise, result);
        return result;
    }

    /// <summary>The model's output at x_t read as (x_0, eps), x_0 clipped or thresholded as the model says and eps read again from it.</summary>
    internal (float[] X0, float[] Eps) Predict(ReadOnlySpan<float> output, ReadOnlySpan<float> x, int t)
    {
        double a = tables.SqrtAlphasCumprod[t], s = tables.SqrtOneMinusAlphasCumprod[t];
        var (x0Form, epsForm) = ObjectiveForms.Read(Objective, a, s);
        var x0 = new float[x.Length];
        var eps = new float[x.Length];
        Apply(x0Form, x, output, x0);
        Apply(epsForm, x, output, eps);
        if (ClipX0 || DynamicThreshold > 0)
        {
            if (DynamicThreshold > 0) DynamicThresholding.Apply(x0, x.Length / ImageLength, DynamicThreshold);
            else for (int i = 0; i < x0.Length; i++) x0[i] = Math.Clamp(x0[i], -1f, 1f);
            Apply(ObjectiveForms.EpsFromX0(a, s), x, x0, eps);
        }
        return (x0, eps);
    }

    /// <summary>(X x + Y y) / Divisor in float32, leaving out what <see cref="LinearForm"/> says backends leave out.</summary>
    internal static void Apply(LinearForm form, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
    {
        if (form.IsSecond) { y.CopyTo(destination); return; }
        float cx = (float)form.X, cy = (float)form.Y, divisor = (float)form.Divisor;
        for (int i = 0; i < destination.Length; i++)
        {
            float value = form.X == 0 ? y[i] * cy : (form.X == 1 ? x[i] : x[i] * cx) + cy * y[i];
            destination[i] = form.Divisor == 1 ? value : value / divisor;
        }
    }

    private SamplerStep NextStep(int t)
    {
        if (plan is null) throw new InvalidOperationException("Call SetTimesteps before Step.");
        if (next >= plan.Steps.Count)
            throw new InvalidOperationException($"The chain is over: all {plan.Steps.Count} steps ran; call SetTimesteps to start another.");
        var step = plan.Steps[next];
        if (t != step.Timestep)
            throw new InvalidOperationException($"Step {next + 1} of {plan.Steps.Count} is at t = {step.Timestep}, not {t}: step through Timesteps in order.");
        return step;
    }

    private static void Add(float[] result, ReadOnlySpan<float> values, double coefficient, ref bool started)
    {
        if (coefficient == 0) return;
        float c = (float)coefficient;
        if (!started)
        {
            for (int i = 0; i < result.Length; i++) result[i] = values[i] * c;
            started = true;
        }
        else
            for (int i = 0; i < result.Length; i++) result[i] += c * values[i];
    }
}
