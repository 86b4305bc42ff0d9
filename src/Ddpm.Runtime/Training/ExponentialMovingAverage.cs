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
    public ExponentialMovingAverage(nn.Module source, nn.Module average, double decay)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(average);
        if (ReferenceEquals(source, average))
            throw new ArgumentException("The EMA model must be a separate instance; the factory returned the trained model itself.", nameof(average));
        if (!(decay >= 0 && decay < 1))
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay must be in [0, 1).");
        Decay = decay;
        parameters = Pair("parameter",
            source.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList(),
            average.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList());
        buffers = Pair("buffer", source.named_buffers().ToList(), average.named_buffers().ToList());
        foreach (var (ema, _) in parameters)
            ema.requires_grad = false;
        CopyFromSource();
    }

    public double Decay { get; }

    /// <summary>
    /// The decay used at 1-based step <paramref name="step"/>: min(Decay, (1 + step) / (10 + step)), the warm-up of
    /// diffusers' EMAModel. Without it the random initial weights keep a weight of Decay^step in the average
    /// (10% after 468 steps at 0.995), which ruins samples drawn early in training.
    /// </summary>
    public double DecayAt(long step) => Math.Min(Decay, (1.0 + step) / (10.0 + step));

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
