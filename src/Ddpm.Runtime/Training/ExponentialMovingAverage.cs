using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Training;

/// <summary>
/// An exponential moving average of a model's weights kept in a second model of the same
/// architecture: after each optimiser step, ema = decay * ema + (1 - decay) * w for every
/// parameter (in place, without autograd); buffers are copied as they are.
/// </summary>
public sealed class ExponentialMovingAverage
{
    private readonly (Tensor Ema, Tensor Source)[] parameters;
    private readonly (Tensor Ema, Tensor Source)[] buffers;

    /// <summary>Pairs the two models' tensors by name and copies the source's weights into the average.</summary>
    /// <param name="source">The model being trained.</param>
    /// <param name="average">A separate instance of the same architecture that holds the average; its parameters stop requiring gradients.</param>
    /// <param name="decay">The largest decay; the warm-up grows towards it.</param>
    /// <param name="warmup">How the decay grows (<see cref="DecayAt"/>).</param>
    /// <param name="power">Exponent of the power warm-up.</param>
    /// <param name="invGamma">Step scale of the power warm-up.</param>
    public ExponentialMovingAverage(nn.Module source, nn.Module average, double decay, EmaWarmup warmup = EmaWarmup.Ratio,
                                    double power = 2.0 / 3.0, double invGamma = 1.0)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(average);
        if (ReferenceEquals(source, average))
            throw new ArgumentException("The EMA model must be a separate instance; the factory returned the trained model itself.", nameof(average));
        if (!(decay >= 0 && decay < 1))
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay must be in [0, 1).");
        if (!Enum.IsDefined(warmup))
            throw new ArgumentOutOfRangeException(nameof(warmup), warmup, "EMA warm-up must be Power, Ratio or None.");
        if (!(power > 0) || double.IsInfinity(power))
            throw new ArgumentOutOfRangeException(nameof(power), power, "EMA power must be a positive finite number.");
        if (!(invGamma > 0) || double.IsInfinity(invGamma))
            throw new ArgumentOutOfRangeException(nameof(invGamma), invGamma, "EMA inv_gamma must be a positive finite number.");
        Decay = decay;
        Warmup = warmup;
        Power = power;
        InvGamma = invGamma;
        parameters = Pair("parameter",
            source.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList(),
            average.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList());
        buffers = Pair("buffer", source.named_buffers().ToList(), average.named_buffers().ToList());
        foreach (var (ema, _) in parameters)
            ema.requires_grad = false;
        CopyFromSource();
    }

    /// <summary>The maximum decay, in [0, 1); <see cref="DecayAt"/> never exceeds it.</summary>
    public double Decay { get; }
    /// <summary>How the decay grows towards <see cref="Decay"/> over the first steps.</summary>
    public EmaWarmup Warmup { get; }
    /// <summary>Exponent of the <see cref="EmaWarmup.Power"/> warm-up (default 2/3).</summary>
    public double Power { get; }
    /// <summary>Step scale (inv_gamma) of the <see cref="EmaWarmup.Power"/> warm-up (default 1).</summary>
    public double InvGamma { get; }

    /// <summary>
    /// The decay used at 1-based step <paramref name="step"/>, capped at <see cref="Decay"/>:
    /// Power: 1 - (1 + step / inv_gamma)^-power (diffusers' EMAModel; at power 2/3 the average spans about the last
    /// 1.5 step^(2/3) steps, so early in training it never reaches back to much worse weights);
    /// Ratio: (1 + step) / (10 + step); None: Decay from the first step. Without a warm-up the random initial weights
    /// keep a weight of Decay^step in the average (10% after 468 steps at 0.995).
    /// </summary>
    public double DecayAt(long step) => Warmup switch
    {
        EmaWarmup.Power => Math.Min(Decay, Math.Max(0.0, 1.0 - Math.Pow(1.0 + step / InvGamma, -Power))),
        EmaWarmup.Ratio => Math.Min(Decay, (1.0 + step) / (10.0 + step)),
        _ => Decay,
    };

    /// <summary>ema = d * ema + (1 - d) * w with d = <see cref="DecayAt"/>(step); buffers are copied.</summary>
    public void Update(long step)
    {
        double decay = DecayAt(step);
        using var _ = no_grad();
        foreach (var (ema, source) in parameters)
            ema.mul_(decay).add_(source, alpha: 1 - decay);
        foreach (var (ema, source) in buffers)
            ema.copy_(source);
    }

    /// <summary>ema = w (done once at the start of training).</summary>
    public void CopyFromSource()
    {
        using var _ = no_grad();
        foreach (var (ema, source) in parameters.Concat(buffers))
            ema.copy_(source);
    }

    private static (Tensor, Tensor)[] Pair(string kind, List<(string Name, Tensor Value)> source, List<(string Name, Tensor Value)> average)
    {
        var byName = average.ToDictionary(p => p.Name, p => p.Value);
        var pairs = new List<(Tensor, Tensor)>(source.Count);
        foreach (var (name, value) in source)
        {
            if (!byName.Remove(name, out var ema))
                throw new ArgumentException($"The EMA model has no {kind} '{name}'; it must have the trained model's architecture.");
            if (!ema.shape.SequenceEqual(value.shape) || ema.dtype != value.dtype)
                throw new ArgumentException($"EMA {kind} '{name}' is {ema.dtype} [{string.Join(", ", ema.shape)}], the model's is {value.dtype} [{string.Join(", ", value.shape)}].");
            pairs.Add((ema, value));
        }
        if (byName.Count > 0)
            throw new ArgumentException($"The EMA model has a {kind} '{byName.Keys.First()}' the trained model lacks; it must have the same architecture.");
        return pairs.ToArray();
    }
}
