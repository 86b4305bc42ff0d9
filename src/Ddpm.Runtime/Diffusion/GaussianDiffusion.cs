using System.Collections.Concurrent;
using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Diffusion;

/// <summary>
/// The forward process q(x_t | x_0), the training loss, and the reverse samplers of a DDPM
/// (Ho et al. 2020) under one noise schedule. The model maps (x_t, t) to its objective's target
/// (eps, x_0 or v; <see cref="DiffusionOptions"/>); every sampler reads that output as the pair
/// (predicted x_0, predicted eps) through <see cref="Predict"/>, so any objective works with any sampler.
/// Everything runs on the device of its inputs (the samplers: of the model); see <see cref="Devices"/>.
/// </summary>
public sealed class GaussianDiffusion
{
    // Schedule tables as tensors, per (table, dtype, device), made once: a host-to-device copy per training step would
    // wait for the device. Keyed by the table array itself; the tables are never changed after construction.
    private readonly ConcurrentDictionary<(double[] Table, ScalarType Dtype, DeviceType Type, int Index), Tensor> deviceTables = new();
    private MinSnrTable? minSnr; // a reference, so a reader never sees one gamma with another's weights

    /// <summary>Binds the diffusion to a schedule and an objective.</summary>
    /// <param name="tables">The forward process's schedule (betas and derived tables, float64); never changed afterwards.</param>
    /// <param name="options">Objective and x_0 treatment; <see cref="DiffusionOptions.Default"/> (eps, no clipping) when null.</param>
    public GaussianDiffusion(ScheduleTables tables, DiffusionOptions? options = null)
    {
        Tables = tables ?? throw new ArgumentNullException(nameof(tables));
        Options = options ?? DiffusionOptions.Default;
    }

    /// <summary>The schedule: betas, alpha_bar and the other per-timestep tables, indexed 0..T-1.</summary>
    public ScheduleTables Tables { get; }
    /// <summary>The objective and the sampling treatment of the predicted x_0.</summary>
    public DiffusionOptions Options { get; }
    /// <summary>The number of diffusion steps T; valid timesteps are 0..T-1.</summary>
    public int Timesteps => Tables.Timesteps;

    /// <summary>
    /// Gathers a[t] for every sample and shapes it to broadcast over x: [B] -> [B, 1, 1, ...].
    /// </summary>
    public static Tensor Extract(double[] a, Tensor t, long[] xShape, ScalarType dtype = ScalarType.Float32)
    {
        if (t.dim() != 1 || t.shape[0] != xShape[0])
            throw new ArgumentException($"t must have shape [{xShape[0]}] to match the batch, got [{string.Join(", ", t.shape)}].", nameof(t));
        using var scope = NewDisposeScope();
        var table = tensor(a, dtype: dtype, device: t.device);
        var shape = new long[xShape.Length];
        Array.Fill(shape, 1L);
        shape[0] = xShape[0];
        return table.gather(0, t.to(ScalarType.Int64)).reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>As <see cref="Extract"/>, from a copy of the table kept on t's device (made on first use).</summary>
    private Tensor Gather(double[] table, Tensor t, long[] xShape, ScalarType dtype)
    {
        if (t.dim() != 1 || t.shape[0] != xShape[0])
            throw new ArgumentException($"t must have shape [{xShape[0]}] to match the batch, got [{string.Join(", ", t.shape)}].", nameof(t));
        var device = t.device;
        var values = deviceTables.GetOrAdd((table, dtype, device.type, Math.Max(device.index, 0)),
            _ => tensor(table, dtype: dtype, device: device).DetachFromDisposeScope());
        var shape = new long[xShape.Length];
        Array.Fill(shape, 1L);
        shape[0] = xShape[0];
        using var scope = NewDisposeScope();
        return values.gather(0, t.to(ScalarType.Int64)).reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise (eq. 4 of Ho et al.).</summary>
    public Tensor QSample(Tensor x0, Tensor t, Tensor noise)
    {
        CheckTimesteps(t);
        if (!x0.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"noise shape [{string.Join(", ", noise.shape)}] must equal x0 shape [{string.Join(", ", x0.shape)}].", nameof(noise));
        using var scope = NewDisposeScope();
        var a = Gather(Tables.SqrtAlphasCumprod, t, x0.shape, x0.dtype);
        var b = Gather(Tables.SqrtOneMinusAlphasCumprod, t, x0.shape, x0.dtype);
        return (a * x0).add_(b * noise).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The training loss at timesteps t (Algorithm 1, generalised): the distance between the model's output and its
    /// objective's target (<see cref="Target"/>), weighted per sample by min-SNR-gamma when <paramref name="minSnrGamma"/> &gt; 0.
    /// </summary>
    public Tensor Loss(nn.Module<Tensor, Tensor, Tensor> model, Tensor x0, Tensor t, Tensor noise, LossKind kind = LossKind.Huber,
                       double minSnrGamma = 0)
    {
        using var scope = NewDisposeScope();
        var xt = QSample(x0, t, noise);
        var predicted = model.forward(xt, t);
        return ObjectiveLoss(predicted, Target(x0, t, noise), t, kind, minSnrGamma).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// What the model learns to output at x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: eps, x_0,
    /// or v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans and Ho 2022, section 4).
    /// </summary>
    public Tensor Target(Tensor x0, Tensor t, Tensor noise)
    {
        switch (Options.Objective)
        {
            case Objective.Eps: return noise.alias();
            case Objective.X0: return x0.alias();
            case Objective.V:
            {
                using var scope = NewDisposeScope();
                var a = Gather(Tables.SqrtAlphasCumprod, t, x0.shape, x0.dtype);
                var s = Gather(Tables.SqrtOneMinusAlphasCumprod, t, x0.shape, x0.dtype);
                return (a * noise).sub_(s * x0).MoveToOuterDisposeScope();
            }
            default: throw new InvalidOperationException($"Unknown objective {Options.Objective}.");
        }
    }

    /// <summary>
    /// Min-SNR-gamma weights (Hang et al. 2023, eq. 8 and its variants): with SNR_t = alpha_bar_t / (1 - alpha_bar_t),
    /// min(SNR, gamma) for x_0-prediction, min(SNR, gamma) / SNR for eps, min(SNR, gamma) / (SNR + 1) for v.
    /// Each makes the loss equal to min(SNR, gamma) times the squared error of x_0.
    /// </summary>
    public double[] MinSnrWeights(double gamma)
    {
        if (!(gamma > 0) || double.IsInfinity(gamma))
            throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "min_snr_gamma must be a positive finite number.");
        var weights = new double[Timesteps];
        for (int t = 0; t < Timesteps; t++)
        {
            double snr = Tables.AlphasCumprod[t] / (1 - Tables.AlphasCumprod[t]);
            double clipped = Math.Min(snr, gamma);
            weights[t] = Options.Objective switch
            {
                Objective.Eps => clipped / snr,
                Objective.X0 => clipped,
                _ => clipped / (snr + 1),
            };
        }
        return weights;
    }

    /// <summary>The distance between output and target: the plain mean, or the per-sample mean weighted by min-SNR-gamma.</summary>
    public Tensor ObjectiveLoss(Tensor predicted, Tensor target, Tensor t, LossKind kind, double minSnrGamma)
    {
        if (minSnrGamma == 0)
            return NoiseLoss(target, predicted, kind);
        using var scope = NewDisposeScope();
        var perElement = kind switch
        {
            LossKind.Huber => nn.functional.smooth_l1_loss(predicted, target, reduction: nn.Reduction.None),
            LossKind.L2 => nn.functional.mse_loss(predicted, target, reduction: nn.Reduction.None),
            LossKind.L1 => nn.functional.l1_loss(predicted, target, reduction: nn.Reduction.None),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Loss must be Huber, L2 or L1."),
        };
        var perSample = perElement.flatten(1).mean(new long[] { 1 });
        // One weights array per gamma, so its device copy is made once.
        if (minSnr is not { } cached || cached.Gamma != minSnrGamma)
            minSnr = cached = new MinSnrTable(minSnrGamma, MinSnrWeights(minSnrGamma));
        var weights = Gather(cached.Weights, t, new[] { t.shape[0] }, perSample.dtype);
        return (perSample * weights).mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The unweighted mean distance between <paramref name="predicted"/> and the target: smooth L1 (delta 1), mean squared
    /// or mean absolute error, as <paramref name="kind"/> says.
    /// </summary>
    /// <param name="noise">The target (named for the eps objective; any objective's target works).</param>
    /// <param name="predicted">The model output, same shape as <paramref name="noise"/>.</param>
    /// <param name="kind">The distance.</param>
    /// <returns>A scalar tensor.</returns>
    public static Tensor NoiseLoss(Tensor noise, Tensor predicted, LossKind kind) => kind switch
    {
        LossKind.Huber => nn.functional.smooth_l1_loss(predicted, noise),
        LossKind.L2 => nn.functional.mse_loss(predicted, noise),
        LossKind.L1 => nn.functional.l1_loss(predicted, noise),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Loss must be Huber, L2 or L1."),
    };

    /// <summary>
    /// Reads the model's output at x_t (every sample at timestep t) as (predicted x_0, predicted eps), using
    /// x_t = a x_0 + s eps with a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t), a^2 + s^2 = 1:
    /// eps-prediction x_0 = (x_t - s eps) / a; x_0-prediction eps = (x_t - a x_0) / s; v-prediction x_0 = a x_t - s v, eps = s x_t + a v.
    /// Then x_0 is clipped or dynamically thresholded if the options say so, and eps recomputed from it,
    /// so the samplers' update (eq. 11, DDIM, DPM-Solver++) moves towards the treated x_0.
    /// </summary>
    public (Tensor X0, Tensor Eps) Predict(Tensor output, Tensor x, int t)
    {
        using var scope = NewDisposeScope();
        double a = Tables.SqrtAlphasCumprod[t], s = Tables.SqrtOneMinusAlphasCumprod[t];
        var (x0Form, epsForm) = ObjectiveForms.Read(Options.Objective, a, s);
        var x0 = DiffusionScheduler.Apply(x0Form, x, output);
        var eps = DiffusionScheduler.Apply(epsForm, x, output);
        if (Options.ClipX0 || Options.DynamicThreshold > 0)
        {
            x0 = Options.DynamicThreshold > 0 ? DynamicThreshold(x0, Options.DynamicThreshold) : x0.clamp(-1.0, 1.0);
            eps = DiffusionScheduler.Apply(ObjectiveForms.EpsFromX0(a, s), x, x0);
        }
        return (x0.MoveToOuterDisposeScope(), eps.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Dynamic thresholding (Saharia et al. 2022, section 2.3): per image, s = max(1, the p-quantile of |x_0|);
    /// x_0 is clamped to [-s, s] and divided by s, so it ends in [-1, 1] without saturating every outlier to the edge.
    /// </summary>
    public static Tensor DynamicThreshold(Tensor x0, double quantile)
    {
        if (!(quantile > 0 && quantile < 1))
            throw new ArgumentOutOfRangeException(nameof(quantile), quantile, "The dynamic threshold quantile must be in (0, 1).");
        using var scope = NewDisposeScope();
        var flat = x0.abs().flatten(1).to(ScalarType.Float32);
        using var q = full(Array.Empty<long>(), quantile, ScalarType.Float32, x0.device); // a fill on the device, no host copy
        var limit = flat.quantile(q, dim: 1, keepdim: true).clamp_min(1.0).to(x0.dtype);
        var shape = new long[x0.dim()];
        Array.Fill(shape, 1L);
        shape[0] = x0.shape[0];
        limit = limit.reshape(shape);
        return torch.maximum(torch.minimum(x0, limit), limit.neg()).div_(limit).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One reverse step x_t -> x_{t-1} (Algorithm 2): every sample in the batch is at the same t, so the schedule's
    /// constants are scalars. The mean is the posterior mean at the predicted x_0 (<see cref="SamplerPlan.DdpmStep"/>);
    /// no noise is added at t = 0.
    /// </summary>
    public Tensor PSample(nn.Module<Tensor, Tensor, Tensor> model, Tensor x, int t, Generator? generator = null)
    {
        var step = SamplerPlan.DdpmStep(Tables, t);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad(); // sampling never needs the autograd graph
        using var timesteps = full(x.shape[0], t, ScalarType.Int64, x.device);
        var (x0, eps) = Predict(model.forward(x, timesteps), x, t);
        return DiffusionScheduler.Apply(step, x, x0, eps, null, generator).MoveToOuterDisposeScope();
    }

    /// <summary>A scheduler (SetTimesteps, Step, AddNoise) for <paramref name="sampler"/> under this schedule and objective.</summary>
    /// <param name="sampler">The sampler.</param>
    /// <param name="eta">DDIM's eta (&gt;= 0); unused by the others.</param>
    public DiffusionScheduler Scheduler(SamplerKind sampler, double eta = 0) => new(this, sampler, eta);

    /// <summary>Runs the whole DDPM reverse chain from pure noise. Intermediates (x_T-1 .. x_0) are kept on request.</summary>
    public Tensor PSampleLoop(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, Generator? generator = null,
                              List<Tensor>? intermediates = null, Device? device = null) =>
        Sample(model, shape, SamplerKind.Ddpm, Timesteps, 0, generator, intermediates, device);

    /// <summary>
    /// DDIM (Song et al. 2021, eq. 12) over <paramref name="steps"/> evenly spaced timesteps;
    /// eta = 0 is deterministic, eta = 1 matches the DDPM posterior variance.
    /// </summary>
    public Tensor DdimSample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, int steps, double eta = 0.0,
                             Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null) =>
        Sample(model, shape, SamplerKind.Ddim, steps, eta, generator, intermediates, device);

    /// <summary>
    /// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): deterministic multistep solver of the probability-flow ODE in
    /// the data prediction D = predicted x_0, over <paramref name="steps"/> model calls at <see cref="DpmSolverTimesteps(int)"/>
    /// (the coefficients: <see cref="SamplerPlan"/>). The last call is at t = 0; its prediction is the sample.
    /// </summary>
    public Tensor DpmSolverSample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, int steps,
                                  Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null) =>
        Sample(model, shape, SamplerKind.DpmSolver2M, steps, 0, generator, intermediates, device);

    /// <summary>
    /// SDE-DPM-Solver++(2M) (Lu et al. 2022): the same data-prediction multistep scheme applied to the reverse SDE, with
    /// fresh noise at every step, which corrects the model's errors instead of carrying them to the image, as DDPM's
    /// ancestral steps do, at the solver's step count.
    /// </summary>
    public Tensor DpmSolverSdeSample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, int steps,
                                     Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null) =>
        Sample(model, shape, SamplerKind.DpmSolver2MSde, steps, 0, generator, intermediates, device);

    /// <summary>
    /// The timesteps where DPM-Solver++ calls the model, descending from T - 1 (pure noise) to 0, evenly spaced in
    /// lambda = log(alpha / sigma), each the nearest integer timestep, kept strictly decreasing.
    /// </summary>
    public int[] DpmSolverTimesteps(int steps) => SamplerTimesteps.DpmSolver(SamplerTimesteps.Lambdas(Tables.AlphasCumprod), steps);

    /// <summary>
    /// Draws images from pure noise with <paramref name="sampler"/>: DDPM runs all T steps and ignores
    /// <paramref name="steps"/>; DDIM and the DPM-Solver++ variants make <paramref name="steps"/> model calls. The loop of
    /// <see cref="DiffusionScheduler"/>: one model call and one <see cref="DiffusionScheduler.Step"/> per timestep.
    /// </summary>
    /// <param name="model">The network (or a guided view of it).</param>
    /// <param name="shape">[N, C, H, W].</param>
    /// <param name="sampler">The sampler.</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++.</param>
    /// <param name="eta">DDIM's eta.</param>
    /// <param name="generator">Draws the starting noise and every step's noise; null for the global generator.</param>
    /// <param name="intermediates">Receives a copy of x after every step, when given.</param>
    /// <param name="device">Where to draw; the model's device when null.</param>
    /// <param name="progress">Called after every step with (steps done, steps in all).</param>
    /// <param name="cancellationToken">Checked before every step: a cancelled draw stops within one model call.</param>
    public Tensor Sample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, SamplerKind sampler, int steps, double eta = 0.0,
                         Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null,
                         Action<int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        using var scheduler = Scheduler(sampler, eta);
        scheduler.SetTimesteps(steps);
        using var _ = no_grad();
        var x = Devices.Randn(shape, ScalarType.Float32, device ?? Devices.Of(model), generator);
        try
        {
            var timesteps = scheduler.Timesteps;
            for (int i = 0; i < timesteps.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                int t = timesteps[i];
                using var time = full(shape[0], t, ScalarType.Int64, x.device);
                var (next, x0) = scheduler.Step(model.forward(x, time), t, x, generator);
                x0.Dispose();
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
                if (intermediates is not null) intermediates.Add(x.clone().MoveToOuterDisposeScope());
                progress?.Invoke(i + 1, timesteps.Count);
            }
        }
        catch
        {
            x.Dispose();
            throw;
        }
        return x;
    }

    /// <summary>The DDIM sub-sequence: steps timesteps spaced evenly over [0, T), ascending, starting at 0.</summary>
    public static int[] DdimTimesteps(int timesteps, int steps) => SamplerTimesteps.Ddim(timesteps, steps);

    private sealed record MinSnrTable(double Gamma, double[] Weights);

    /// <summary>Range-checks timesteps on the CPU; elsewhere the check would wait for the device every step, so it is left out.</summary>
    private void CheckTimesteps(Tensor t)
    {
        if (t.numel() == 0 || t.device_type != DeviceType.CPU) return;
        long min = t.min().item<long>(), max = t.max().item<long>();
        if (min < 0 || max >= Timesteps)
            throw new ArgumentOutOfRangeException(nameof(t), $"timesteps must be in [0, {Timesteps - 1}], got [{min}, {max}].");
    }
}
