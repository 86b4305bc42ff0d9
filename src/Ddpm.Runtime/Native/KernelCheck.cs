using System.Diagnostics;
using static TorchSharp.torch;

namespace Ddpm.Native;

/// <summary>
/// Checks libtorch's CPU kernels against a float64 reference on this machine, the way the regression tests of
/// docs/performance.md found oneDNN wrong on AMD EPYC: float32 (or bf16) results, with the heap first filled with NaN
/// so that a kernel that reads memory it never wrote shows it, against the same computation in float64 on libtorch's
/// own kernels (oneDNN has no float64 convolution).
/// </summary>
internal static class KernelCheck
{
    /// <summary>The largest error a float32 result may have, relative to the reference's largest magnitude.</summary>
    public const double Float32Tolerance = 1e-4;

    /// <summary>The same for bf16 results (8 bits of mantissa: about 4e-3 per value, more over long sums).</summary>
    public const double Bf16Tolerance = 3e-2;

    /// <summary>Batch and spatial size of the correctness check: small, so the check of a model's shapes takes well under a second.</summary>
    public const int CheckBatch = 2, CheckSize = 12;

    /// <summary>The tolerance for <paramref name="dtype"/>.</summary>
    public static double ToleranceFor(ScalarType dtype) => dtype == ScalarType.Float32 ? Float32Tolerance : Bf16Tolerance;

    /// <summary>
    /// The matrix products libtorch's own convolutions make of the seed model's layers (im2col columns times the kernel, and
    /// the transposed products of the backward pass), in float32 against float64; the largest relative error over them.
    /// </summary>
    public static double GemmError()
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(20261206);
        double worst = 0;
        // (m, k, n): 28-, 56-, 112- and 168-channel 3x3 convolutions at 28, 14 and 7 pixels of a batch, and a square one.
        foreach (var (m, k, n) in new (long, long, long)[] { (1568, 252, 28), (392, 504, 56), (98, 1008, 112), (98, 1512, 168), (512, 512, 512) })
        {
            Poison();
            var a = randn(m, k, generator: generator);
            var b = randn(k, n, generator: generator);
            var exact = mm(a.to(ScalarType.Float64), b.to(ScalarType.Float64));
            worst = Math.Max(worst, RelativeError(mm(a, b), exact));
            worst = Math.Max(worst, RelativeError(mm(a.t(), a.narrow(1, 0, n)), mm(a.t().to(ScalarType.Float64), a.narrow(1, 0, n).to(ScalarType.Float64))));
            worst = Math.Max(worst, RelativeError(mm(b.t(), a.t()), mm(b.t().to(ScalarType.Float64), a.t().to(ScalarType.Float64))));
        }
        return worst;
    }

    /// <summary>
    /// The forward pass and both gradients (input and weight) of one convolution shape on the backend that libtorch's
    /// switch selects now, in <paramref name="dtype"/>, against float64 on libtorch's own kernels: the largest relative error
    /// of the three (infinite when any value is not finite).
    /// </summary>
    public static double ConvolutionError(ConvolutionShape shape, ScalarType dtype, bool oneDnn)
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(shape.Seed);
        var x = randn(CheckBatch, shape.InChannels, CheckSize, CheckSize, generator: generator);
        var w = randn(shape.OutChannels, shape.InChannels / shape.Groups, shape.Kernel, shape.Kernel, generator: generator)
                * (1.0 / Math.Sqrt(shape.InChannels / shape.Groups * shape.Kernel * shape.Kernel));
        var b = randn(shape.OutChannels, generator: generator);
        var (y, gx, gw) = Run(shape, x, w, b, dtype, oneDnn, generator: null);
        var (ry, rgx, rgw) = Run(shape, x, w, b, ScalarType.Float64, oneDnn: false, generator: null);
        return new[] { RelativeError(y, ry), RelativeError(gx, rgx), RelativeError(gw, rgw) }.Max();
    }

    private static (Tensor Y, Tensor InputGrad, Tensor WeightGrad) Run(
        ConvolutionShape shape, Tensor x, Tensor w, Tensor b, ScalarType dtype, bool oneDnn, TorchSharp.torch.Generator? generator)
    {
        // libtorch selects the backend when the forward runs and again when the backward runs (at::convolution_backward),
        // so the switch stays set for both.
        bool? previous = OneDnn.SetConvolutionBackend(oneDnn);
        try
        {
            Poison();
            var xi = x.to(dtype).detach().requires_grad_(true);
            var wi = w.to(dtype).detach().requires_grad_(true);
            var y = nn.functional.conv2d(xi, wi, b.to(dtype), strides: [shape.Stride, shape.Stride],
                padding: [shape.Padding, shape.Padding], groups: shape.Groups);
            using var upstream = ones_like(y);
            y.backward([upstream]);
            return (y.detach().to(ScalarType.Float64), xi.grad!.to(ScalarType.Float64), wi.grad!.to(ScalarType.Float64));
        }
        finally
        {
            if (previous is bool before) OneDnn.SetConvolutionBackend(before);
        }
    }

    /// <summary>Leaves NaN in freed blocks of the sizes the checks then allocate, as a long-running process's heap would hold.</summary>
    private static void Poison()
    {
        for (int j = 0; j < 8; j++)
            full(new long[] { (1L << 12) << j }, float.NaN).Dispose();
    }

    /// <summary>max |a - reference| / max |reference|; infinite when <paramref name="a"/> holds a value that is not finite.</summary>
    private static double RelativeError(Tensor a, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var a64 = a.to(ScalarType.Float64);
        if (!isfinite(a64).all().item<bool>()) return double.PositiveInfinity;
        double scale = Math.Max(reference.abs().max().item<double>(), 1e-30);
        return (a64 - reference).abs().max().item<double>() / scale;
    }
}

/// <summary>One convolution as the backends see it: channels, square kernel, stride, padding and groups.</summary>
internal readonly record struct ConvolutionShape(long InChannels, long OutChannels, long Kernel, long Stride, long Padding, long Groups)
{
    /// <summary>A seed of the check's random tensors that is the same in every process.</summary>
    public ulong Seed => (ulong)(((InChannels * 1009 + OutChannels) * 31 + Kernel) * 31 + Stride) * 31 + (ulong)(Padding * 31 + Groups);

    /// <summary>The key of this shape's result in the cache, with the data type.</summary>
    public string Key(ScalarType dtype) =>
        $"in{InChannels}-out{OutChannels}-k{Kernel}-s{Stride}-p{Padding}-g{Groups}-{dtype.ToString().ToLowerInvariant()}";
}
