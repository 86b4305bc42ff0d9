using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>
/// Linear attention (Shen et al. 2018, "Efficient Attention"): softmax of q over features and of
/// k over positions, so context = k v^T is [d, d] and the cost is linear in H*W.
/// <c>to_out</c> is Conv2d 1x1 followed by GroupNorm(1), keys <c>to_out.0</c> and <c>to_out.1</c>.
/// </summary>
public sealed class LinearAttention : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d to_qkv;
    private readonly Sequential to_out;
    private readonly long heads;
    private readonly long dimHead;
    private readonly double scale;

    /// <summary>Attention heads (the ONNX export splits q, k and v by them).</summary>
    internal long Heads => heads;
    /// <summary>Channels per head.</summary>
    internal long DimHead => dimHead;
    /// <summary>The factor queries are scaled by, dimHead^-0.5.</summary>
    internal double Scale => scale;

    /// <summary>Creates the linear attention layer for a <paramref name="dim"/>-channel feature map.</summary>
    /// <param name="dim">Channels of the input and of the output.</param>
    /// <param name="heads">Number of attention heads.</param>
    /// <param name="dimHead">Channels per head; queries are scaled by <c>dimHead^-0.5</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException">Any of the sizes is below 1.</exception>
    public LinearAttention(long dim, long heads = 4, long dimHead = 32) : base(nameof(LinearAttention))
    {
        AttentionChecks.Validate(dim, heads, dimHead);
        this.heads = heads;
        this.dimHead = dimHead;
        scale = Math.Pow(dimHead, -0.5);
        to_qkv = nn.Conv2d(dim, heads * dimHead * 3, 1, bias: false);
        to_out = nn.Sequential(("0", nn.Conv2d(heads * dimHead, dim, 1)), ("1", GroupNorms.Create(1, dim)));
        RegisterComponents();
    }

    /// <summary>Applies linear attention; cost grows linearly with H*W.</summary>
    /// <param name="x">Feature map [B, dim, H, W].</param>
    /// <returns>A new tensor of the same shape as <paramref name="x"/>.</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], h = x.shape[2], w = x.shape[3];
        var qkv = to_qkv.forward(x).view(b, 3, heads, dimHead, h * w).unbind(1); // each [b, heads, d, n]
        var q = qkv[0].softmax(-2) * scale;
        var k = qkv[1].softmax(-1);
        var v = qkv[2];
        var context = matmul(k, v.transpose(-1, -2));           // [b, heads, d, e]
        var output = matmul(context.transpose(-1, -2), q);      // [b, heads, e, n]
        return to_out.forward(output.reshape(b, heads * dimHead, h, w)).MoveToOuterDisposeScope();
    }
}
