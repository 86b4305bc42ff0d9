using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>
/// Transformer position encoding of the timestep (Vaswani et al. 2017):
/// emb[i] = sin(t * 10000^(-i/(half-1))), emb[half+i] = cos(...), for i in [0, dim/2).
/// </summary>
public sealed class SinusoidalPositionEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly long dim;
    private readonly double[] frequencies;
    // The module has no tensors, so Module.to(dtype) has nothing to convert; it records the dtype
    // instead, so the embedding comes out in the dtype the layers after it use.
    private ScalarType outputType = ScalarType.Float32;

    /// <summary>Creates the embedding with <paramref name="dim"/> outputs per timestep.</summary>
    /// <param name="dim">Embedding width: even and at least 4 (half sines, half cosines).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is odd or below 4.</exception>
    public SinusoidalPositionEmbeddings(long dim) : base(nameof(SinusoidalPositionEmbeddings))
    {
        if (dim < 4 || dim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, "Sinusoidal embedding dim must be even and >= 4.");
        this.dim = dim;
        long half = dim / 2;
        double step = Math.Log(10000) / (half - 1);
        frequencies = Enumerable.Range(0, (int)half).Select(i => Math.Exp(-i * step)).ToArray();
    }

    /// <summary>The angular frequencies 10000^(-i/(half-1)), i in [0, dim/2) (the ONNX export stores them as a constant).</summary>
    internal IReadOnlyList<double> Frequencies => frequencies;

    /// <summary>Embedding width: the last dimension of the output.</summary>
    public long Dim => dim;

    /// <summary>Embeds each timestep; the angles are computed in float32 and the result is cast to the module's dtype.</summary>
    /// <param name="time">Timesteps, 1-D [B] (integer steps 0..T-1 or any real value).</param>
    /// <returns>[B, dim] in the dtype the module was last converted to (float32 by default).</returns>
    /// <exception cref="ArgumentException"><paramref name="time"/> is not 1-D.</exception>
    public override Tensor forward(Tensor time)
    {
        if (time.dim() != 1)
            throw new ArgumentException($"Timesteps must be a 1-D tensor of shape [batch], got [{string.Join(", ", time.shape)}].", nameof(time));
        using var scope = NewDisposeScope();
        // Angles in float32 whatever the model's dtype: t up to 1000 does not fit bfloat16's 8-bit mantissa.
        var angles = time.to(ScalarType.Float32).unsqueeze(1) * tensor(frequencies, ScalarType.Float32, time.device).unsqueeze(0);
        return cat(new[] { angles.sin(), angles.cos() }, dim: -1).to(outputType).MoveToOuterDisposeScope();
    }

    /// <summary>Records <paramref name="dtype"/> as the output dtype (the module has no tensors to convert).</summary>
    protected override nn.Module _to(ScalarType dtype, bool non_blocking)
    {
        outputType = dtype;
        return base._to(dtype, non_blocking);
    }

    /// <summary>Records <paramref name="dtype"/> as the output dtype (the module has no tensors to convert).</summary>
    protected override nn.Module _to(Device device, ScalarType dtype, bool non_blocking)
    {
        outputType = dtype;
        return base._to(device, dtype, non_blocking);
    }
}
