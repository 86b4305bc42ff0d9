using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>x + fn(x). The wrapped module is registered as <c>fn</c>.</summary>
public sealed class Residual : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> fn;

    /// <summary>Wraps <paramref name="fn"/> with a skip connection.</summary>
    /// <param name="fn">Module whose output has the shape of its input.</param>
    public Residual(nn.Module<Tensor, Tensor> fn) : base(nameof(Residual))
    {
        this.fn = fn;
        RegisterComponents();
    }

    /// <summary>The wrapped module.</summary>
    public nn.Module<Tensor, Tensor> Fn => fn;

    /// <summary>Returns <c>x + fn(x)</c> as a new tensor.</summary>
    public override Tensor forward(Tensor x)
    {
        using var y = fn.forward(x);
        return y.add(x);
    }
}
