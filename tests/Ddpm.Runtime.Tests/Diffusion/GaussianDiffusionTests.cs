using Ddpm.Diffusion;
using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Diffusion;

public class GaussianDiffusionTests
{
    static readonly ScheduleTables Tables = ScheduleMath.Tables(ScheduleKind.Linear, 10, 0.01, 0.2);
    static float[] Values(Tensor t) => t.detach().cpu().data<float>().ToArray();

    /// <summary>A stand-in model that predicts a fixed multiple of its input as the noise.</summary>
    sealed class ScaledInputModel(float factor) : nn.Module<Tensor, Tensor, Tensor>("ScaledInput")
    {
        public override Tensor forward(Tensor x, Tensor t) => x * factor;
    }

    [Fact]
    public void Extract_gathers_per_sample_and_broadcasts()
    {
        using var t = tensor(new long[] { 0, 9, 4 });
        using var values = GaussianDiffusion.Extract(Tables.Betas, t, new long[] { 3, 1, 2, 2 });
        Assert.Equal(new long[] { 3, 1, 1, 1 }, values.shape);
        Assert.Equal(new[] { (float)Tables.Betas[0], (float)Tables.Betas[9], (float)Tables.Betas[4] }, Values(values));
        Assert.Throws<ArgumentException>(() => GaussianDiffusion.Extract(Tables.Betas, t, new long[] { 2, 1 }));
    }

    [Fact]
    public void QSample_is_the_closed_form_forward_process()
    {
        var diffusion = new GaussianDiffusion(Tables);
        using var x0 = full(new long[] { 2, 1, 1, 2 }, 0.5f);
        using var noise = tensor(new float[] { 1, -1, 2, 0 }).reshape(2, 1, 1, 2);
        using var t = tensor(new long[] { 3, 7 });
        using var xt = diffusion.QSample(x0, t, noise);
        double a3 = Tables.SqrtAlphasCumprod[3], b3 = Tables.SqrtOneMinusAlphasCumprod[3];
        double a7 = Tables.SqrtAlphasCumprod[7], b7 = Tables.SqrtOneMinusAlphasCumprod[7];
        var v = Values(xt);
        Assert.Equal(0.5 * a3 + b3, v[0], 5);
        Assert.Equal(0.5 * a3 - b3, v[1], 5);
        Assert.Equal(0.5 * a7 + 2 * b7, v[2], 5);
        Assert.Equal(0.5 * a7, v[3], 5);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => diffusion.QSample(x0, tensor(new long[] { 0, 10 }), noise));
        Assert.Contains("[0, 9]", error.Message);
    }

    [Theory]
    [InlineData(LossKind.Huber, 0.5f, 0.125)]   // 0.5 * d^2 for |d| < 1
    [InlineData(LossKind.Huber, 2f, 1.5)]       // |d| - 0.5 beyond
    [InlineData(LossKind.L2, 2f, 4.0)]
    [InlineData(LossKind.L1, -2f, 2.0)]
    public void Noise_losses_have_their_textbook_values(LossKind kind, float difference, double expected)
    {
        using var noise = zeros(4);
        using var predicted = full(4, difference);
        using var loss = GaussianDiffusion.NoiseLoss(noise, predicted, kind);
        Assert.Equal(expected, loss.item<float>(), 6);
    }

    [Fact]
    public void PSample_at_t0_returns_the_mean_without_noise()
    {
        var diffusion = new GaussianDiffusion(Tables);
        using var model = new ScaledInputModel(0.5f);
        using var x = full(new long[] { 1, 1, 2, 2 }, 2f);
        using var y = diffusion.PSample(model, x, 0);
        // mean = 1/sqrt(alpha_0) * (x - beta_0 / sqrt(1 - alpha_bar_0) * eps), eps = 0.5 x
        double expected = Tables.SqrtRecipAlphas[0] * (2 - Tables.Betas[0] / Tables.SqrtOneMinusAlphasCumprod[0] * 1.0);
        Assert.All(Values(y), v => Assert.Equal(expected, v, 5));
    }

    [Fact]
    public void PSample_above_t0_adds_posterior_noise_from_the_given_generator()
    {
        var diffusion = new GaussianDiffusion(Tables);
        using var model = new ScaledInputModel(0f);
        using var x = ones(1, 1, 2, 2);
        using var g1 = new Generator(42);
        using var y = diffusion.PSample(model, x, 5, g1);
        using var g2 = new Generator(42);
        using var z = randn(new long[] { 1, 1, 2, 2 }, generator: g2);
        var expected = Values(z).Select(n => Tables.SqrtRecipAlphas[5] + Math.Sqrt(Tables.PosteriorVariance[5]) * n).ToArray();
        var actual = Values(y);
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], actual[i], 5);
    }

    [Fact]
    public void PSampleLoop_is_reproducible_and_keeps_every_intermediate()
    {
        var diffusion = new GaussianDiffusion(Tables);
        using var model = new ScaledInputModel(0.1f);
        var frames = new List<Tensor>();
        using var a = diffusion.PSampleLoop(model, new long[] { 2, 1, 4, 4 }, new Generator(7), frames);
        using var b = diffusion.PSampleLoop(model, new long[] { 2, 1, 4, 4 }, new Generator(7));
        using var c = diffusion.PSampleLoop(model, new long[] { 2, 1, 4, 4 }, new Generator(8));
        Assert.Equal(Values(a), Values(b));
        Assert.NotEqual(Values(a), Values(c));
        Assert.Equal(10, frames.Count);
        Assert.Equal(Values(a), Values(frames[^1]));
        frames.ForEach(f => f.Dispose());
    }

    [Fact]
    public void Ddim_with_eta_zero_and_a_zero_model_rescales_the_start_noise()
    {
        var diffusion = new GaussianDiffusion(Tables);
        using var model = new ScaledInputModel(0f);
        using var y = diffusion.DdimSample(model, new long[] { 1, 1, 2, 2 }, steps: 5, eta: 0, generator: new Generator(3));
        using var start = randn(new long[] { 1, 1, 2, 2 }, generator: new Generator(3));
        // With eps = 0 each step multiplies by sqrt(alpha_bar_prev / alpha_bar): the product telescopes.
        int top = GaussianDiffusion.DdimTimesteps(10, 5)[^1];
        double factor = 1 / Math.Sqrt(Tables.AlphasCumprod[top]);
        var expected = Values(start);
        var actual = Values(y);
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i] * factor, actual[i], 4);
        Assert.Equal(new[] { 0, 2, 4, 6, 8 }, GaussianDiffusion.DdimTimesteps(10, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => diffusion.DdimSample(model, new long[] { 1, 1, 2, 2 }, steps: 11));
    }
}
