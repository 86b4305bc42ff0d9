using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>fn(GroupNorm(1, dim)(x)): layer norm over channels and positions before attention.</summary>
public sealed class PreNorm : nn.Module<Tensor, Tensor>
{
    // Field order is registration order: fn before norm, as in the PyTorch state dict.
    private readonly nn.Module<Tensor, Tensor> fn;
    private readonly GroupNorm norm;

    /// <summary>Wraps <paramref name="fn"/> with a GroupNorm(1, <paramref name="dim"/>) in front of it.</summary>
    /// <param name="dim">Channels of the input.</param>
    /// <param name="fn">The module applied to the normalised input, registered as <c>fn</c>.</param>
    public PreNorm(long dim, nn.Module<Tensor, Tensor> fn) : base(nameof(PreNorm))
    {
        this.fn = fn;
        norm = GroupNorms.Create(1, dim);
        RegisterComponents();
    }

    /// <summary>The wrapped module (typically an attention layer).</summary>
    public nn.Module<Tensor, Tensor> Fn => fn;

    /// <summary>Returns <c>fn(GroupNorm(x))</c>; x is [B, dim, H, W].</summary>
    public override Tensor forward(Tensor x)
    {
        using var normed = norm.forward(x);
        return fn.forward(normed);
    }
}
