using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Diffusion;

/// <summary>
/// The forward process q(x_t | x_0), the training loss, and the reverse samplers of a DDPM
/// (Ho et al. 2020) under one noise schedule. The model maps (x_t, t) to the predicted noise.
/// </summary>
public sealed class GaussianDiffusion
{
    public GaussianDiffusion(ScheduleTables tables, DiffusionOptions? options = null)
    {
        Tables = tables ?? throw new ArgumentNullException(nameof(tables));
        Options = options ?? DiffusionOptions.Default;
    }

    public ScheduleTables Tables { get; }
    /// <summary>The objective and the sampling treatment of the predicted x_0.</summary>
    public DiffusionOptions Options { get; }
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

    /// <summary>x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise (eq. 4 of Ho et al.).</summary>
    public Tensor QSample(Tensor x0, Tensor t, Tensor noise)
    {
        CheckTimesteps(t);
        if (!x0.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"noise shape [{string.Join(", ", noise.shape)}] must equal x0 shape [{string.Join(", ", x0.shape)}].", nameof(noise));
        using var scope = NewDisposeScope();
        var a = Extract(Tables.SqrtAlphasCumprod, t, x0.shape, x0.dtype);
        var b = Extract(Tables.SqrtOneMinusAlphasCumprod, t, x0.shape, x0.dtype);
        return (a * x0).add_(b * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The loss between the true and predicted noise at random timesteps t (Algorithm 1).</summary>
    public Tensor Loss(nn.Module<Tensor, Tensor, Tensor> model, Tensor x0, Tensor t, Tensor noise, LossKind kind = LossKind.Huber)
    {
        using var scope = NewDisposeScope();
        var xt = QSample(x0, t, noise);
        var predicted = model.forward(xt, t);
        return NoiseLoss(noise, predicted, kind).MoveToOuterDisposeScope();
    }

    public static Tensor NoiseLoss(Tensor noise, Tensor predicted, LossKind kind) => kind switch
    {
        LossKind.Huber => nn.functional.smooth_l1_loss(predicted, noise),
        LossKind.L2 => nn.functional.mse_loss(predicted, noise),
        LossKind.L1 => nn.functional.l1_loss(predicted, noise),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Loss must be Huber, L2 or L1."),
    };

    /// <summary>
    /// One reverse step x_t -> x_{t-1} (Algorithm 2): every sample in the batch is at the same t,
    /// so the schedule's constants are scalars. No noise is added at t = 0.
    /// </summary>
    public Tensor PSample(nn.Module<Tensor, Tensor, Tensor> model, Tensor x, int t, Generator? generator = null)
    {
        if (t < 0 || t >= Timesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"t must be in [0, {Timesteps - 1}].");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad(); // sampling never needs the autograd graph
        using var timesteps = full(x.shape[0], t, ScalarType.Int64, x.device);
        var predictedNoise = model.forward(x, timesteps);
        // mean = 1/sqrt(alpha_t) * (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps)   (eq. 11)
        double epsCoefficient = Tables.Betas[t] / Tables.SqrtOneMinusAlphasCumprod[t];
        var mean = x.add(predictedNoise, alpha: -epsCoefficient).mul_(Tables.SqrtRecipAlphas[t]);
        if (t > 0)
        {
            var z = randn(x.shape, x.dtype, x.device, generator: generator);
            mean.add_(z, alpha: Math.Sqrt(Tables.PosteriorVariance[t]));
        }
        return mean.MoveToOuterDisposeScope();
    }

    /// <summary>Runs the whole reverse chain from pure noise. Intermediates (x_T-1 .. x_0) are kept on request.</summary>
    public Tensor PSampleLoop(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, Generator? generator = null,
                              List<Tensor>? intermediates = null, Device? device = null)
    {
        using var _ = no_grad();
        var x = randn(shape, ScalarType.Float32, device, generator: generator);
        for (int t = Timesteps - 1; t >= 0; t--)
        {
            var next = PSample(model, x, t, generator);
            x.Dispose();
            x = next;
            intermediates?.Add(x.clone());
        }
        return x;
    }

    /// <summary>
    /// DDIM (Song et al. 2021, eq. 12) over <paramref name="steps"/> evenly spaced timesteps;
    /// eta = 0 is deterministic, eta = 1 matches the DDPM posterior variance.
    /// </summary>
    public Tensor DdimSample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, int steps, double eta = 0.0,
                             Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null)
    {
        if (steps < 1 || steps > Timesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"DDIM steps must be in [1, {Timesteps}].");
        if (eta < 0)
            throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must be >= 0.");
        using var _ = no_grad();
        int[] sequence = DdimTimesteps(Timesteps, steps);
        var x = randn(shape, ScalarType.Float32, device, generator: generator);
        for (int i = sequence.Length - 1; i >= 0; i--)
        {
            using var scope = NewDisposeScope();
            int t = sequence[i];
            double alphaBar = Tables.AlphasCumprod[t];
            double alphaBarPrev = i > 0 ? Tables.AlphasCumprod[sequence[i - 1]] : 1.0;
            using var timesteps = full(shape[0], t, ScalarType.Int64, x.device);
            var eps = model.forward(x, timesteps);
            // x_0 predicted from eps, then the direction pointing to x_t.
            var x0 = x.add(eps, alpha: -Math.Sqrt(1 - alphaBar)).div_(Math.Sqrt(alphaBar));
            double sigma = eta * Math.Sqrt((1 - alphaBarPrev) / (1 - alphaBar) * (1 - alphaBar / alphaBarPrev));
            var next = x0.mul(Math.Sqrt(alphaBarPrev)).add_(eps, alpha: Math.Sqrt(Math.Max(1 - alphaBarPrev - sigma * sigma, 0)));
            if (sigma > 0)
                next.add_(randn(shape, x.dtype, x.device, generator: generator), alpha: sigma);
            x.Dispose();
            x = next.MoveToOuterDisposeScope();
            if (intermediates is not null) intermediates.Add(x.clone().MoveToOuterDisposeScope());
        }
        return x;
    }

    /// <summary>
    /// DPM-Solver++(2M) (Lu et al. 2022) over <paramref name="steps"/> model calls: deterministic, second order,
    /// first order at the first and the last step.
    /// </summary>
    public Tensor DpmSolverSample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, int steps,
                                  Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null)
        => throw new NotImplementedException("DPM-Solver++ lands with the sampler work.");

    /// <summary>
    /// Draws images from pure noise with <paramref name="sampler"/>: DDPM runs all T steps and ignores
    /// <paramref name="steps"/>; DDIM and DPM-Solver++ make <paramref name="steps"/> model calls.
    /// </summary>
    public Tensor Sample(nn.Module<Tensor, Tensor, Tensor> model, long[] shape, SamplerKind sampler, int steps, double eta = 0.0,
                         Generator? generator = null, List<Tensor>? intermediates = null, Device? device = null) => sampler switch
    {
        SamplerKind.Ddpm => PSampleLoop(model, shape, generator, intermediates, device),
        SamplerKind.Ddim => DdimSample(model, shape, steps, eta, generator, intermediates, device),
        SamplerKind.DpmSolver2M => DpmSolverSample(model, shape, steps, generator, intermediates, device),
        _ => throw new ArgumentOutOfRangeException(nameof(sampler), sampler, "Use Ddpm, Ddim or DpmSolver2M."),
    };

    /// <summary>The DDIM sub-sequence: steps timesteps spaced evenly over [0, T), ascending, starting at 0.</summary>
    public static int[] DdimTimesteps(int timesteps, int steps)
    {
        var sequence = new int[steps];
        for (int i = 0; i < steps; i++)
            sequence[i] = (int)((long)i * timesteps / steps);
        return sequence;
    }

    private void CheckTimesteps(Tensor t)
    {
        if (t.numel() == 0) return;
        long min = t.min().item<long>(), max = t.max().item<long>();
        if (min < 0 || max >= Timesteps)
            throw new ArgumentOutOfRangeException(nameof(t), $"timesteps must be in [0, {Timesteps - 1}], got [{min}, {max}].");
    }
}
