using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Diffusion;

/// <summary>
/// A sampler as a scheduler, on tensors (the shape diffusers users know): <see cref="SetTimesteps"/>, then for each t of
/// <see cref="Timesteps"/> call the model and <see cref="Step"/>; <see cref="AddNoise"/> is the forward process.
/// The coefficients come from <see cref="SamplerPlan"/> (Ddpm.Core), which Ddpm.Onnx's <see cref="SpanScheduler"/>
/// applies to float arrays; this class only applies them to tensors. It keeps the previous x_0 for DPM-Solver++(2M), so
/// one instance runs one chain at a time; dispose it to free that tensor.
/// <code>
/// using var scheduler = FashionMnistSchedule.Diffusion.Scheduler(SamplerKind.DpmSolver2M);
/// scheduler.SetTimesteps(20);
/// foreach (int t in scheduler.Timesteps)
///     x = scheduler.Step(model.forward(x, full(n, t, ScalarType.Int64)), t, x, generator).Prev;
/// </code>
/// </summary>
public sealed class DiffusionScheduler : IDisposable
{
    private readonly GaussianDiffusion diffusion;
    private readonly double eta;
    private SamplerPlan? plan;
    private int next;
    private Tensor? previousX0;

    /// <summary>A scheduler for <paramref name="kind"/> under <paramref name="diffusion"/>'s schedule, objective and x_0 treatment.</summary>
    /// <param name="diffusion">The schedule and objective the model was trained with.</param>
    /// <param name="kind">The sampler.</param>
    /// <param name="eta">DDIM's eta (&gt;= 0); unused by the others.</param>
    public DiffusionScheduler(GaussianDiffusion diffusion, SamplerKind kind, double eta = 0)
    {
        this.diffusion = diffusion ?? throw new ArgumentNullException(nameof(diffusion));
        Kind = kind;
        this.eta = eta;
    }

    /// <summary>The sampler.</summary>
    public SamplerKind Kind { get; }

    /// <summary>Where the model is called, in order (empty until <see cref="SetTimesteps"/>).</summary>
    public IReadOnlyList<int> Timesteps => plan?.Timesteps ?? Array.Empty<int>();

    /// <summary>Plans <paramref name="count"/> model calls (DDPM always makes T) and starts a new chain.</summary>
    /// <exception cref="ArgumentOutOfRangeException">count or eta is out of range for the sampler.</exception>
    public void SetTimesteps(int count)
    {
        plan = SamplerPlan.Create(diffusion.Tables, Kind, count, eta);
        next = 0;
        previousX0?.Dispose();
        previousX0 = null;
    }

    /// <summary>
    /// One step from x_t to the next x: the model's output at t read as (x_0, eps) by <see cref="GaussianDiffusion.Predict"/>,
    /// then the plan's coefficients applied; fresh noise, when the step draws some, comes from <paramref name="generator"/>.
    /// </summary>
    /// <param name="modelOutput">The model's prediction at (x, t).</param>
    /// <param name="t">The timestep: the next entry of <see cref="Timesteps"/>.</param>
    /// <param name="x">x_t.</param>
    /// <param name="generator">The noise generator; null for the global one.</param>
    /// <returns>The next x and the predicted x_0 (as treated); the caller owns both.</returns>
    /// <exception cref="InvalidOperationException">No <see cref="SetTimesteps"/>, the chain is over, or t is not the next timestep.</exception>
    public (Tensor Prev, Tensor PredictedX0) Step(Tensor modelOutput, int t, Tensor x, Generator? generator = null)
    {
        if (plan is null) throw new InvalidOperationException("Call SetTimesteps before Step.");
        if (next >= plan.Steps.Count)
            throw new InvalidOperationException($"The chain is over: all {plan.Steps.Count} steps ran; call SetTimesteps to start another.");
        var step = plan.Steps[next];
        if (t != step.Timestep)
            throw new InvalidOperationException($"Step {next + 1} of {plan.Steps.Count} is at t = {step.Timestep}, not {t}: step through Timesteps in order.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (x0, eps) = diffusion.Predict(modelOutput, x, t);
        var result = Apply(step, x, x0, eps, previousX0, generator);
        previousX0?.Dispose();
        previousX0 = x0.alias().DetachFromDisposeScope(); // kept for the next second-order step, whatever the caller does with x0
        next++;
        return (result.MoveToOuterDisposeScope(), x0.MoveToOuterDisposeScope());
    }

    /// <summary>x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise (eq. 4 of Ho et al. 2020), every sample at t.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, int t)
    {
        if (t < 0 || t >= diffusion.Timesteps) throw new ArgumentOutOfRangeException(nameof(t), t, $"t must be in [0, {diffusion.Timesteps - 1}].");
        return Apply(ObjectiveForms.AddNoise(diffusion.Tables.SqrtAlphasCumprod[t], diffusion.Tables.SqrtOneMinusAlphasCumprod[t]), x0, noise);
    }

    /// <summary>Frees the kept x_0.</summary>
    public void Dispose()
    {
        previousX0?.Dispose();
        previousX0 = null;
    }

    /// <summary>x X + D Data + eps Eps + z Noise, as <see cref="SamplerStep"/> defines it; z drawn only when Noise is not 0.</summary>
    internal static Tensor Apply(SamplerStep step, Tensor x, Tensor x0, Tensor eps, Tensor? previousX0, Generator? generator)
    {
        using var scope = NewDisposeScope();
        var d = step.Order == 2 && previousX0 is not null ? x0.mul(step.CurrentX0).add_(previousX0, alpha: step.PreviousX0) : x0;
        Tensor? result = null;
        result = Add(result, x, step.X);
        result = Add(result, d, step.Data);
        result = Add(result, eps, step.Eps);
        if (step.Noise != 0)
            result = Add(result, Devices.Randn(x.shape, x.dtype, x.device, generator), step.Noise);
        return (result ?? zeros_like(x)).MoveToOuterDisposeScope();
    }

    /// <summary>(X x + Y y) / Divisor, leaving out what <see cref="LinearForm"/> says backends leave out.</summary>
    internal static Tensor Apply(LinearForm form, Tensor x, Tensor y)
    {
        if (form.IsSecond) return y.alias();
        using var scope = NewDisposeScope();
        var value = form.X == 0 ? y.mul(form.Y) : (form.X == 1 ? x.add(y, alpha: form.Y) : x.mul(form.X).add_(y, alpha: form.Y));
        if (form.Divisor != 1) value.div_(form.Divisor);
        return value.MoveToOuterDisposeScope();
    }

    private static Tensor? Add(Tensor? result, Tensor values, double coefficient) =>
        coefficient == 0 ? result : result is null ? values.mul(coefficient) : result.add_(values, alpha: coefficient);
}
