using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>
/// Conv2d whose kernel is standardised per output channel before use (Qiao et al. 2019,
/// "Weight Standardization"): w' = (w - mean) / sqrt(var + eps), which works well with GroupNorm.
/// Parameters are named <c>weight</c> and <c>bias</c> like nn.Conv2d.
/// </summary>
public sealed class WeightStandardizedConv2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly long[] padding;

    /// <summary>Creates the convolution with nn.Conv2d's default (Kaiming uniform) initialisation.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="padding">Zero padding on each side, in pixels.</param>
    /// <param name="bias">Whether to add a learned per-channel bias.</param>
    public WeightStandardizedConv2d(long inChannels, long outChannels, long kernelSize, long padding = 0, bool bias = true)
        : base(nameof(WeightStandardizedConv2d))
    {
        // Borrow nn.Conv2d's initialisation (Kaiming uniform), then own its tensors.
        using var template = nn.Conv2d(inChannels, outChannels, kernelSize, padding: padding, bias: bias);
        weight = new Parameter(template.weight!.detach().clone());
        this.bias = bias ? new Parameter(template.bias!.detach().clone()) : null;
        this.padding = new[] { padding, padding };
        RegisterComponents();
    }

    /// <summary>The raw (unstandardised) kernel, [outChannels, inChannels, kernelSize, kernelSize].</summary>
    public Parameter Weight => weight;
    /// <summary>The bias, [outChannels]; null when built with <c>bias: false</c>.</summary>
    public Parameter? Bias => bias;

    /// <summary>eps of the standardisation: 1e-5 for float32, 1e-3 for lower precision.</summary>
    public static double EpsFor(ScalarType dtype) => dtype == ScalarType.Float32 || dtype == ScalarType.Float64 ? 1e-5 : 1e-3;

    /// <summary>Standardises the kernel (with <see cref="EpsFor"/> of the input's dtype) and convolves <paramref name="x"/> with it.</summary>
    /// <param name="x">Input [B, inChannels, H, W].</param>
    /// <returns>[B, outChannels, H', W'], the size given by the kernel and padding (stride 1).</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var standardized = StandardizedWeight(EpsFor(x.dtype));
        return nn.functional.conv2d(x, standardized, bias, padding: padding).MoveToOuterDisposeScope();
    }

    /// <summary>Padding on each side, in pixels (the ONNX export writes it as the Conv's pads).</summary>
    internal long Padding => padding[0];

    /// <summary>The standardised kernel the forward pass convolves with; the ONNX export stores it as a plain Conv's weight.</summary>
    internal Tensor StandardizedWeight(double eps)
    {
        // (w - mean) / sqrt(var + eps) per output channel, the biased variance over (in, kh, kw), is layer_norm over the
        // kernel's last three dims. One libtorch call with eps as a plain double: TorchSharp 0.107's add/sub create a
        // Scalar alpha = 1 that a GC on another thread can finalize mid-call ("toFloat: Expected false to be true";
        // docs/performance.md, "TorchSharp's temporary Scalars").
        return nn.functional.layer_norm(weight, weight.shape[1..], eps: eps);
    }
}
