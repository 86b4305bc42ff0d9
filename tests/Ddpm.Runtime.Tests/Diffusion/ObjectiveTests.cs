using Ddpm.Diffusion;
using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Diffusion;

/// <summary>eps, x_0 and v objectives: targets, the reading of a model output, min-SNR weights, clipping and thresholding.</summary>
public class ObjectiveTests
{
    static readonly ScheduleTables Tables = ScheduleMath.Tables(ScheduleKind.Linear, 50, 1e-4, 0.2);
    static float[] Values(Tensor t) => t.detach().cpu().data<float>().ToArray();

    static GaussianDiffusion For(Objective objective, bool clip = false, double threshold = 0) =>
        new(Tables, new DiffusionOptions(objective, clip, threshold));

    /// <summary>Knows the clean image and answers every (x_t, t) with its objective's exact target.</summary>
    internal sealed class OracleModel(GaussianDiffusion diffusion, Tensor x0) : nn.Module<Tensor, Tensor, Tensor>("Oracle")
    {
        public int Calls { get; private set; }

        public override Tensor forward(Tensor x, Tensor t)
        {
            Calls++;
            using var scope = NewDisposeScope();
            var a = GaussianDiffusion.Extract(diffusion.Tables.SqrtAlphasCumprod, t, x.shape);
            var s = GaussianDiffusion.Extract(diffusion.Tables.SqrtOneMinusAlphasCumprod, t, x.shape);
            var clean = x0.expand(x.shape);
            var eps = (x - a * clean) / s;
            return diffusion.Target(clean, t, eps).MoveToOuterDisposeScope();
        }
    }

    [Fact]
    public void V_target_is_sqrt_alpha_bar_eps_minus_sqrt_one_minus_alpha_bar_x0()
    {
        var diffusion = For(Objective.V);
        using var x0 = tensor(new float[] { 0.5f, -1f }).reshape(2, 1, 1, 1);
        using var noise = tensor(new float[] { 2f, 0.25f }).reshape(2, 1, 1, 1);
        using var t = tensor(new long[] { 3, 40 });
        var v = Values(diffusion.Target(x0, t, noise));
        Assert.Equal(Tables.SqrtAlphasCumprod[3] * 2 - Tables.SqrtOneMinusAlphasCumprod[3] * 0.5, v[0], 5);
        Assert.Equal(Tables.SqrtAlphasCumprod[40] * 0.25 + Tables.SqrtOneMinusAlphasCumprod[40] * 1, v[1], 5);
        Assert.Equal(new[] { 2f, 0.25f }, Values(For(Objective.Eps).Target(x0, t, noise)));
        Assert.Equal(new[] { 0.5f, -1f }, Values(For(Objective.X0).Target(x0, t, noise)));
    }

    [Theory]
    [InlineData(Objective.Eps)]
    [InlineData(Objective.X0)]
    [InlineData(Objective.V)]
    public void Predict_reads_the_exact_target_back_as_x0_and_eps(Objective objective)
    {
        var diffusion = For(objective);
        using var x0 = tensor(new float[] { 0.9f, -0.3f, 0.1f, -1f }).reshape(1, 1, 2, 2);
        using var noise = tensor(new float[] { -1.5f, 0.7f, 2f, 0.2f }).reshape(1, 1, 2, 2);
        foreach (int step in new[] { 0, 17, 49 })
        {
            using var t = tensor(new long[] { step });
            using var xt = diffusion.QSample(x0, t, noise);
            using var target = diffusion.Target(x0, t, noise);
            var (x0Read, epsRead) = diffusion.Predict(target, xt, step);
            // x_0 from eps at t = 49 divides by sqrt(alpha_bar) ~ 0.3: allow for float32 there.
            AssertClose(Values(x0), Values(x0Read), 2e-4);
            AssertClose(Values(noise), Values(epsRead), 2e-4);
        }
    }

    [Fact]
    public void Clipping_keeps_x0_in_the_data_range_and_eps_consistent_with_it()
    {
        var diffusion = For(Objective.X0, clip: true);
        using var output = tensor(new float[] { 3f, -0.5f, -2f, 0.25f }).reshape(1, 1, 2, 2);
        using var x = tensor(new float[] { 0.1f, 0.2f, 0.3f, 0.4f }).reshape(1, 1, 2, 2);
        var (x0, eps) = diffusion.Predict(output, x, 20);
        Assert.Equal(new[] { 1f, -0.5f, -1f, 0.25f }, Values(x0));
        // x_t = a x_0 + s eps still holds with the clipped x_0.
        double a = Tables.SqrtAlphasCumprod[20], s = Tables.SqrtOneMinusAlphasCumprod[20];
        var rebuilt = Values(x0).Zip(Values(eps), (c, e) => (float)(a * c + s * e)).ToArray();
        AssertClose(Values(x), rebuilt, 1e-5);
    }

    [Fact]
    public void Dynamic_threshold_divides_by_the_per_image_quantile_of_abs_x0_but_never_by_less_than_one()
    {
        // Image 0: |x| sorted 0.5, 1.5, 2, 3; the 0.5-quantile (linear interpolation) is 1.75.
        // Image 1: every |x| < 1, so s = 1 and the image is unchanged.
        using var x0 = tensor(new float[] { 0.5f, -1.5f, 2f, -3f, 0.2f, -0.4f, 0.6f, 0.9f }).reshape(2, 1, 2, 2);
        using var y = GaussianDiffusion.DynamicThreshold(x0, 0.5);
        AssertClose(new[] { 0.5f / 1.75f, -1.5f / 1.75f, 1f, -1f, 0.2f, -0.4f, 0.6f, 0.9f }, Values(y), 1e-6);
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.DynamicThreshold(x0, 1.0));
    }

    [Theory]
    [InlineData(Objective.Eps)]
    [InlineData(Objective.X0)]
    [InlineData(Objective.V)]
    public void Min_snr_weights_make_every_objective_min_snr_times_the_x0_error(Objective objective)
    {
        const double gamma = 5;
        var weights = For(objective).MinSnrWeights(gamma);
        for (int t = 0; t < Tables.Timesteps; t++)
        {
            double ab = Tables.AlphasCumprod[t], snr = ab / (1 - ab);
            // At fixed x_t an x_0 error d gives an eps error (a/s) d and a v error d/s (x_0 = a x_t - s v):
            // squared, snr and snr + 1 times the x_0 error. The weight must cancel that factor down to min(snr, gamma).
            double factor = objective switch { Objective.Eps => snr, Objective.V => snr + 1, _ => 1 };
            Assert.Equal(Math.Min(snr, gamma), weights[t] * factor, 9);
        }
        Assert.True(1 / (1 - Tables.AlphasCumprod[0]) > gamma); // both branches of min() are exercised
        Assert.True(Tables.AlphasCumprod[^1] / (1 - Tables.AlphasCumprod[^1]) < gamma);
    }

    [Fact]
    public void Weighted_loss_is_the_mean_of_per_sample_losses_times_their_weights()
    {
        var diffusion = For(Objective.Eps);
        using var target = zeros(2, 1, 1, 2);
        using var predicted = tensor(new float[] { 1, 3, 2, 2 }).reshape(2, 1, 1, 2);
        using var t = tensor(new long[] { 0, 45 });
        var w = diffusion.MinSnrWeights(5);
        using var loss = diffusion.ObjectiveLoss(predicted, target, t, LossKind.L2, 5);
        double expected = (w[0] * (1 + 9) / 2.0 + w[45] * (4 + 4) / 2.0) / 2;
        Assert.Equal(expected, loss.item<float>(), 5);
        using var plain = diffusion.ObjectiveLoss(predicted, target, t, LossKind.L2, 0);
        Assert.Equal((1 + 9 + 4 + 4) / 4.0, plain.item<float>(), 6);
    }

    public static TheoryData<Objective, SamplerKind> EveryObjectiveAndSampler()
    {
        var data = new TheoryData<Objective, SamplerKind>();
        foreach (var objective in Enum.GetValues<Objective>())
            foreach (var sampler in Enum.GetValues<SamplerKind>())
                data.Add(objective, sampler);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryObjectiveAndSampler))]
    public void An_oracle_model_makes_every_sampler_land_on_x0(Objective objective, SamplerKind sampler)
    {
        var diffusion = For(objective);
        using var x0 = tensor(new float[] { 0.9f, -0.3f, 0.1f, -1f, 0.5f, 0f, -0.7f, 0.33f }).reshape(2, 1, 2, 2);
        using var model = new OracleModel(diffusion, x0);
        using var generator = new Generator(11);
        using var y = diffusion.Sample(model, new long[] { 2, 1, 2, 2 }, sampler, steps: 10, eta: 0.5, generator: generator);
        AssertClose(Values(x0), Values(y), 1e-4);
        Assert.Equal(sampler == SamplerKind.Ddpm ? Tables.Timesteps : 10, model.Calls);
    }

    internal static void AssertClose(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]} (tolerance {tolerance})");
    }
}
