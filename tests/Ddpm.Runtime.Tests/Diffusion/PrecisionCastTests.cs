using Ddpm.Diffusion;
using Ddpm.Runtime.Tests.Training;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Diffusion;

/// <summary>Sampling in bf16: the model computes in bfloat16, the sampler sees float32.</summary>
public class PrecisionCastTests
{
    [Fact]
    public void Fp32_leaves_the_model_as_it_is()
    {
        using var model = new SmallTestUNet(3);
        Assert.Same(model, PrecisionCast.Wrap(model, "fp32"));
        Assert.Same(model, PrecisionCast.Wrap(model, "FP32"));
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
    }

    [Fact]
    public void Bf16_computes_in_bfloat16_and_returns_float32_close_to_the_float32_model()
    {
        using var reference = new SmallTestUNet(3);
        using var copy = new SmallTestUNet(3); // same seed: same weights
        reference.eval();
        copy.eval();
        using var x = randn(new long[] { 4, 1, 8, 8 }, generator: new Generator(1));
        using var t = tensor(new long[] { 0, 5, 10, 15 });
        using var expected = reference.forward(x, t);

        var wrapped = PrecisionCast.Wrap(copy, "bf16");
        Assert.IsType<PrecisionCast>(wrapped);
        Assert.All(copy.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var actual = wrapped.forward(x, t);
        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        double relative = (actual - expected).norm().item<float>() / expected.norm().item<float>();
        Assert.InRange(relative, 1e-6, 0.05); // bf16 rounding is visible but small
    }

    [Fact]
    public void An_unknown_precision_names_the_accepted_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => PrecisionCast.Parse("fp8"));
        Assert.StartsWith("precision must be fp32, bf16 or fp16, got 'fp8'.", e.Message);
    }
}
