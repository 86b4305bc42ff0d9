using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>
/// Space-to-depth ("b c (h 2) (w 2) -> b (c 2 2) h w", no information lost) then a 1x1 conv;
/// the conv is registered as <c>1</c>, as in nn.Sequential(Rearrange, Conv2d).
/// </summary>
public sealed class Downsample : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    /// <summary>Creates a downsampling layer that halves height and width.</summary>
    /// <param name="dim">Input channels (the conv sees <c>4 * dim</c> after space-to-depth).</param>
    /// <param name="dimOut">Output channels; <paramref name="dim"/> when null.</param>
    public Downsample(long dim, long? dimOut = null) : base(nameof(Downsample))
    {
        conv = nn.Conv2d(dim * 4, dimOut ?? dim, 1);
        register_module("1", conv);
    }

    /// <summary>Registration is explicit (the conv is "1"); TorchSharp would otherwise add the field as "conv" too.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Maps [B, dim, H, W] to [B, dimOut, H/2, W/2].</summary>
    /// <exception cref="ArgumentException">H or W is odd.</exception>
    public override Tensor forward(Tensor x)
    {
        if (x.shape[2] % 2 != 0 || x.shape[3] % 2 != 0)
            throw new ArgumentException($"Downsample needs even height and width, got {x.shape[2]}x{x.shape[3]}.", nameof(x));
        using var folded = nn.functional.pixel_unshuffle(x, 2);
        return conv.forward(folded);
    }
}
