using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Models.Tests;

public class FashionMnistScheduleTests
{
    [Fact]
    public void Generated_tables_equal_the_runtime_computation_bit_for_bit()
    {
        var computed = ScheduleMath.Tables(ScheduleKind.Linear, 300, 1e-4, 0.02);
        var generated = FashionMnistSchedule.Tables;
        Assert.Equal(computed.Betas, FashionMnistSchedule.Betas.ToArray());
        Assert.Equal(computed.Betas, generated.Betas);
        Assert.Equal(computed.Alphas, generated.Alphas);
        Assert.Equal(computed.AlphasCumprod, generated.AlphasCumprod);
        Assert.Equal(computed.AlphasCumprodPrev, generated.AlphasCumprodPrev);
        Assert.Equal(computed.SqrtRecipAlphas, generated.SqrtRecipAlphas);
        Assert.Equal(computed.SqrtAlphasCumprod, generated.SqrtAlphasCumprod);
        Assert.Equal(computed.SqrtOneMinusAlphasCumprod, generated.SqrtOneMinusAlphasCumprod);
        Assert.Equal(computed.PosteriorVariance, generated.PosteriorVariance);
        Assert.Equal(FashionMnistSchedule.Fingerprint, computed.Fingerprint);
        Assert.Equal(computed.Fingerprint, generated.Fingerprint);
    }

    [Fact]
    public void Constants_describe_the_declaration()
    {
        Assert.Equal(ScheduleKind.Linear, FashionMnistSchedule.Kind);
        Assert.Equal(300, FashionMnistSchedule.Timesteps);
        Assert.Equal(1e-4, FashionMnistSchedule.BetaStart);
        Assert.Equal(0.02, FashionMnistSchedule.BetaEnd);
        Assert.Equal(300, FashionMnistSchedule.Diffusion.Timesteps);
    }

    [Fact]
    public void Samplers_give_the_same_images_for_the_same_seed()
    {
        manual_seed(5);
        using var model = new FashionMnistUNet();
        model.eval();
        var shape = FashionMnistUNet.BatchShape(2);
        Tensor Ddim(ulong seed)
        {
            using var generator = new Generator(seed);
            return FashionMnistSchedule.Diffusion.DdimSample(model, shape, steps: 3, eta: 0.5, generator);
        }
        using var a = Ddim(11);
        using var b = Ddim(11);
        using var c = Ddim(12);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.False(a.allclose(c));

        using var x = randn(shape, generator: new Generator(3));
        using var step1 = FashionMnistSchedule.Diffusion.PSample(model, x, 10, new Generator(4));
        using var step2 = FashionMnistSchedule.Diffusion.PSample(model, x, 10, new Generator(4));
        Assert.True(step1.eq(step2).all().item<bool>());
    }
}
