using Ddpm.Blocks;
using Ddpm.Native;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Native;

/// <summary>
/// libtorch's oneDNN convolutions read the padding of channel blocks uninitialised (Native/OneDnn.cs): with a heap that
/// held NaN, a 28-channel 3x3 conv returned NaN in most calls until the blocks configured the remedy.
/// </summary>
public class OneDnnTests
{
    [Theory]
    [InlineData(null, OneDnn.Mode.Auto)]
    [InlineData("", OneDnn.Mode.Auto)]
    [InlineData(" auto", OneDnn.Mode.Auto)]
    [InlineData(" zero ", OneDnn.Mode.ZeroFill)]
    [InlineData("OFF", OneDnn.Mode.Off)]
    [InlineData("unsafe", OneDnn.Mode.AsShipped)]
    public void DDPM_ONEDNN_values_map_to_modes(string? value, OneDnn.Mode mode) => Assert.Equal(mode, OneDnn.ParseMode(value));

    [Fact]
    public void An_unknown_DDPM_ONEDNN_value_names_the_accepted_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => OneDnn.ParseMode("fast"));
        Assert.Equal("DDPM_ONEDNN=fast is not one of auto, off, zero or unsafe.", e.Message);
    }

    /// <summary>
    /// The default starts with both of libtorch's outside convolution libraries off: oneDNN (wrong for some channel counts on
    /// some CPUs) until the kernel check of a model chooses it, and NNPACK (which libtorch otherwise tries on every
    /// convolution, printing a warning each time where it cannot start) for good.
    /// </summary>
    [SkippableFact]
    public void The_default_starts_with_oneDNN_and_NNPACK_off_in_libtorch()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the remedy reaches libtorch's Linux symbols only");
        Skip.If(OneDnn.CurrentMode != OneDnn.Mode.Auto, $"{OneDnn.EnvironmentVariable} chose a mode for this process; this checks the default (auto)");
        OneDnn.Configure();
        OneDnn.SetConvolutionBackend(false); // as Configure leaves it, whatever a kernel check of another test chose
        Assert.Equal((false, false), OneDnn.UserEnabledConvolutionBackends());
        Assert.StartsWith("libtorch's own convolutions until a model's shapes are checked", OneDnn.Status);
    }

    /// <summary>
    /// Under the runtime's default, float32 convolutions agree with float64 for every channel count, including those of
    /// 4 mod 8 (12, 28, 84) that oneDNN computed wrong on AMD EPYC (errors of 1.1-2.1).
    /// </summary>
    [SkippableTheory]
    [InlineData(12)]
    [InlineData(28)]
    [InlineData(84)]
    [InlineData(56)]
    public void Convolutions_agree_with_float64_for_channel_counts_oneDNN_got_wrong(int inputChannels)
    {
        OneDnn.Configure();
        Skip.If(OneDnn.CurrentMode is not (OneDnn.Mode.Off or OneDnn.Mode.Auto),
                $"{OneDnn.EnvironmentVariable} chose oneDNN for this process; this checks libtorch's own kernels");
        OneDnn.SetConvolutionBackend(false);
        using var scope = NewDisposeScope();
        manual_seed(inputChannels);
        var x = randn(2, inputChannels, 14, 14);
        var w = randn(28, inputChannels, 3, 3) * 0.1;
        var y = nn.functional.conv2d(x, w, padding: new long[] { 1, 1 });
        var exact = nn.functional.conv2d(x.to(ScalarType.Float64), w.to(ScalarType.Float64), padding: new long[] { 1, 1 });
        double error = (y.to(ScalarType.Float64) - exact).abs().max().item<double>();
        Assert.True(error < 1e-4, $"{inputChannels} input channels: max abs error {error:G3} against float64 ({OneDnn.Status})");
    }

    [SkippableFact]
    public void Convolutions_of_odd_channel_counts_stay_finite_after_the_heap_held_NaN()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the oneDNN remedy reaches libtorch's Linux symbols only");
        manual_seed(3);
        using var conv = new WeightStandardizedConv2d(28, 28, 3, padding: 1);
        if (OneDnn.CurrentMode == OneDnn.Mode.Auto)
            OneDnn.SetConvolutionBackend(false); // as the default leaves a model that no check has chosen oneDNN for
        using var x = randn(2, 28, 28, 28);
        using var reference = conv.forward(x).detach();
        Assert.True(isfinite(reference).all().item<bool>());

        int nonFinite = 0, different = 0;
        for (int i = 0; i < 60; i++)
        {
            using var scope = NewDisposeScope();
            // Leave NaN in freed buffers of about the sizes the conv's reorders ask for.
            for (int j = 0; j < 6; j++)
                full(new long[] { 2 * 32 * 30 * 30 + j * 4096 }, float.NaN).Dispose();
            var y = conv.forward(x);
            if (!isfinite(y).all().item<bool>()) nonFinite++;
            else if (!y.allclose(reference, rtol: 1e-5, atol: 1e-6)) different++;
        }
        Assert.Equal((0, 0), (nonFinite, different));
    }
}
