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
    [InlineData(null, OneDnn.Mode.Off)]
    [InlineData("", OneDnn.Mode.Off)]
    [InlineData(" zero ", OneDnn.Mode.ZeroFill)]
    [InlineData("OFF", OneDnn.Mode.Off)]
    [InlineData("unsafe", OneDnn.Mode.AsShipped)]
    public void DDPM_ONEDNN_values_map_to_modes(string? value, OneDnn.Mode mode) => Assert.Equal(mode, OneDnn.ParseMode(value));

    [Fact]
    public void An_unknown_DDPM_ONEDNN_value_names_the_accepted_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => OneDnn.ParseMode("fast"));
        Assert.Equal("DDPM_ONEDNN=fast is not one of zero, off or unsafe.", e.Message);
    }

    /// <summary>
    /// The default turns off both of libtorch's outside convolution libraries: oneDNN (wrong for some channel counts) and
    /// NNPACK (which libtorch otherwise tries on every convolution, printing a warning each time where it cannot start).
    /// </summary>
    [SkippableFact]
    public void The_default_turns_off_oneDNN_and_NNPACK_in_libtorch()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the remedy reaches libtorch's Linux symbols only");
        Skip.If(OneDnn.ParseMode(Environment.GetEnvironmentVariable(OneDnn.EnvironmentVariable)) != OneDnn.Mode.Off,
                $"{OneDnn.EnvironmentVariable} chose oneDNN for this process; this checks the default (off)");
        OneDnn.Configure();
        Assert.Equal((false, false), OneDnn.UserEnabledConvolutionBackends());
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
        Skip.If(OneDnn.ParseMode(Environment.GetEnvironmentVariable(OneDnn.EnvironmentVariable)) != OneDnn.Mode.Off,
                $"{OneDnn.EnvironmentVariable} chose oneDNN for this process; this checks the default (off)");
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
        if (Environment.GetEnvironmentVariable(OneDnn.EnvironmentVariable) is null
            && Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is null or OneDnn.CappedIsa)
            Assert.Equal("oneDNN and NNPACK off (libtorch's own convolutions)", OneDnn.Status);
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
