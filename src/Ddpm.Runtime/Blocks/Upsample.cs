using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>Nearest-neighbour x2 then a 3x3 conv; the conv is registered as <c>1</c>, as in nn.Sequential(Upsample, Conv2d).</summary>
public sealed class Upsample : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    /// <summary>Creates an upsampling layer that doubles height and width.</summary>
    /// <param name="dim">Input channels.</param>
    /// <param name="dimOut">Output channels; <paramref name="dim"/> when null.</param>
    public Upsample(long dim, long? dimOut = null) : base(nameof(Upsample))
    {
        conv = nn.Conv2d(dim, dimOut ?? dim, 3, padding: 1);
        register_module("1", conv);
    }

    /// <summary>Registration is explicit (the conv is "1"); TorchSharp would otherwise add the field as "conv" too.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Maps [B, dim, H, W] to [B, dimOut, 2H, 2W].</summary>
    public override Tensor forward(Tensor x)
    {
        using var upsampled = nn.functional.interpolate(x, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest);
        return conv.forward(upsampled);
    }
}
