using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>x + fn(x). The wrapped module is registered as <c>fn</c>.</summary>
public sealed class Residual : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> fn;

    public Residual(nn.Module<Tensor, Tensor> fn) : base(nameof(Residual))
    {
        this.fn = fn;
        RegisterComponents();
    }

    public nn.Module<Tensor, Tensor> Fn => fn;

    public override Tensor forward(Tensor x)
    {
        using var y = fn.forward(x);
        return y.add(x);
    }
}
