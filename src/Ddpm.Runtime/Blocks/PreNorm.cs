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

    public PreNorm(long dim, nn.Module<Tensor, Tensor> fn) : base(nameof(PreNorm))
    {
        this.fn = fn;
        norm = GroupNorms.Create(1, dim);
        RegisterComponents();
    }

    public nn.Module<Tensor, Tensor> Fn => fn;

    public override Tensor forward(Tensor x)
    {
        using var normed = norm.forward(x);
        return fn.forward(normed);
    }
}
