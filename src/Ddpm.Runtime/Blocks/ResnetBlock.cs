using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>
/// Two Blocks with a residual connection (He et al. 2016); the time embedding goes through
/// SiLU -> Linear to a per-channel scale and shift for the first block (FiLM).
/// A 1x1 conv maps the residual when the channel count changes.
/// </summary>
public sealed class ResnetBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Sequential? mlp;
    private readonly Block block1;
    private readonly Block block2;
    private readonly nn.Module<Tensor, Tensor> res_conv;
    private readonly long dimOut;

    /// <summary>Creates a residual block mapping <paramref name="dim"/> channels to <paramref name="dimOut"/>.</summary>
    /// <param name="dim">Input channels.</param>
    /// <param name="dimOut">Output channels; must be divisible by <paramref name="groups"/>.</param>
    /// <param name="timeEmbDim">Width of the time embedding; null for a block without time conditioning (no <c>mlp</c>).</param>
    /// <param name="groups">GroupNorm groups of both blocks.</param>
    /// <exception cref="ArgumentOutOfRangeException">A channel count is below 1 or not divisible by <paramref name="groups"/>.</exception>
    public ResnetBlock(long dim, long dimOut, long? timeEmbDim = null, long groups = 8) : base(nameof(ResnetBlock))
    {
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "Channels must be >= 1.");
        if (dimOut < 1) throw new ArgumentOutOfRangeException(nameof(dimOut), dimOut, "Channels must be >= 1.");
        this.dimOut = dimOut;
        mlp = timeEmbDim is long t ? nn.Sequential(("0", nn.SiLU()), ("1", nn.Linear(t, dimOut * 2))) : null;
        block1 = new Block(dim, dimOut, groups);
        block2 = new Block(dimOut, dimOut, groups);
        res_conv = dim != dimOut ? nn.Conv2d(dim, dimOut, 1) : nn.Identity();
        RegisterComponents();
    }

    /// <summary>Applies the block conditioned on the time embedding.</summary>
    /// <param name="x">Feature map [B, dim, H, W].</param>
    /// <param name="timeEmbedding">[B, timeEmbDim]; ignored when the block was built without <c>timeEmbDim</c>.</param>
    /// <returns>[B, dimOut, H, W].</returns>
    public override Tensor forward(Tensor x, Tensor timeEmbedding)
    {
        using var scope = NewDisposeScope();
        Tensor? scale = null, shift = null;
        if (mlp is not null)
        {
            var film = mlp.forward(timeEmbedding).view(-1, dimOut * 2, 1, 1).chunk(2, dim: 1);
            scale = film[0];
            shift = film[1];
        }
        var h = block1.forward(x, scale, shift);
        h = block2.forward(h);
        return h.add_(res_conv.forward(x)).MoveToOuterDisposeScope();
    }
}
