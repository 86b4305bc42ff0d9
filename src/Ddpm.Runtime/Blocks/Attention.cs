using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>
/// Multi-head softmax self-attention over all H*W positions (Vaswani et al. 2017), with 1x1 convs
/// for the q/k/v projection (<c>to_qkv</c>, no bias) and the output (<c>to_out</c>).
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d to_qkv;
    private readonly Conv2d to_out;
    private readonly long heads;
    private readonly long dimHead;
    private readonly double scale;

    /// <summary>Attention heads (the ONNX export splits q, k and v by them).</summary>
    internal long Heads => heads;
    /// <summary>Channels per head.</summary>
    internal long DimHead => dimHead;
    /// <summary>The factor queries are scaled by, dimHead^-0.5.</summary>
    internal double Scale => scale;

    /// <summary>Creates the attention layer for a <paramref name="dim"/>-channel feature map.</summary>
    /// <param name="dim">Channels of the input and of the output.</param>
    /// <param name="heads">Number of attention heads.</param>
    /// <param name="dimHead">Channels per head; queries are scaled by <c>dimHead^-0.5</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException">Any of the sizes is below 1.</exception>
    public Attention(long dim, long heads = 4, long dimHead = 32) : base(nameof(Attention))
    {
        AttentionChecks.Validate(dim, heads, dimHead);
        this.heads = heads;
        this.dimHead = dimHead;
        scale = Math.Pow(dimHead, -0.5);
        to_qkv = nn.Conv2d(dim, heads * dimHead * 3, 1, bias: false);
        to_out = nn.Conv2d(heads * dimHead, dim, 1);
        RegisterComponents();
    }

    /// <summary>Attends every position to every other one; cost and memory grow with (H*W)^2.</summary>
    /// <param name="x">Feature map [B, dim, H, W].</param>
    /// <returns>A new tensor of the same shape as <paramref name="x"/>.</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], h = x.shape[2], w = x.shape[3];
        // [b, 3*heads*d, h, w] -> q, k, v each [b, heads, d, n]
        var qkv = to_qkv.forward(x).view(b, 3, heads, dimHead, h * w).unbind(1);
        var q = qkv[0] * scale;
        var k = qkv[1];
        var v = qkv[2];
        var sim = matmul(q.transpose(-1, -2), k);              // [b, heads, n_i, n_j]
        var attn = sim.softmax(-1);                             // softmax is shift-invariant and stable in libtorch
        var output = matmul(attn, v.transpose(-1, -2));         // [b, heads, n_i, d]
        output = output.permute(0, 1, 3, 2).reshape(b, heads * dimHead, h, w);
        return to_out.forward(output).MoveToOuterDisposeScope();
    }
}

internal static class AttentionChecks
{
    public static void Validate(long dim, long heads, long dimHead)
    {
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "Attention input channels must be >= 1.");
        if (heads < 1) throw new ArgumentOutOfRangeException(nameof(heads), heads, "Attention heads must be >= 1.");
        if (dimHead < 1) throw new ArgumentOutOfRangeException(nameof(dimHead), dimHead, "Attention head size must be >= 1.");
    }
}
