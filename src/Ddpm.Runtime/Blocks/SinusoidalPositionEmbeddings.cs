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

    public SinusoidalPositionEmbeddings(long dim) : base(nameof(SinusoidalPositionEmbeddings))
    {
        if (dim < 4 || dim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, "Sinusoidal embedding dim must be even and >= 4.");
        this.dim = dim;
    }

    public long Dim => dim;

    public override Tensor forward(Tensor time)
    {
        if (time.dim() != 1)
            throw new ArgumentException($"Timesteps must be a 1-D tensor of shape [batch], got [{string.Join(", ", time.shape)}].", nameof(time));
        using var scope = NewDisposeScope();
        long half = dim / 2;
        double step = Math.Log(10000) / (half - 1);
        var frequencies = exp(arange(half, dtype: ScalarType.Float32, device: time.device) * -step);
        var angles = time.to(ScalarType.Float32).unsqueeze(1) * frequencies.unsqueeze(0);
        return cat(new[] { angles.sin(), angles.cos() }, dim: -1).MoveToOuterDisposeScope();
    }
}
