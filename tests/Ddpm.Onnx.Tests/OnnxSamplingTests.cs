using System.Diagnostics;
using Ddpm.Diffusion;
using Ddpm.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Onnx.Tests;

/// <summary>
/// Ddpm.Onnx's samplers against GaussianDiffusion's, fed the same starting noise and step noise (a TorchSharp generator's
/// draws, replayed in the order GaussianDiffusion draws them): the samples agree within <see cref="Tolerance"/>. Both take
/// their coefficients from Ddpm.Core's SamplerPlan; this fails if either backend applies them its own way (a coefficient,
/// a term, the order of noise draws) or goes around the core.
/// </summary>
[Collection("torch")]
public sealed class OnnxSamplingTests(Xunit.Abstractions.ITestOutputHelper log)
{
    /// <summary>
    /// Why 1e-4 (absolute): one model call differs by at most ~2e-6 between ONNX Runtime and libtorch (OnnxExportTests),
    /// and the update arithmetic by float32 rounding (the same float64 coefficients, rounded once to float32 as libtorch
    /// rounds a scalar). A chain carries these forward: each DDPM step scales x by about 1/sqrt(alpha_t) (up to 1.12 here) and
    /// the untrained eps-models' samples grow to |x| ~ 20, so the differences grow with them, to 1.1e-5 at most in
    /// 50 steps (3e-7 to 1.6e-6 where x_0 is clipped or thresholded to [-1, 1]); 1e-4 leaves a tenfold margin. A wrong
    /// coefficient, timestep or noise order moves samples by 1e-2 or more (the other noise stream below: by more than 0.1).
    /// </summary>
    private const double Tolerance = 1e-4;

    public static TheoryData<string, string, double> Cases() => new()
    {
        { "eps", "ddpm", 0 },
        { "eps", "ddim", 0 },
        { "eps", "ddim", 1 },
        { "eps", "dpmpp-2m", 0 },
        { "eps", "dpmpp-2m-sde", 0 },
        { "v-clip", "ddpm", 0 },
        { "v-clip", "ddim", 0.5 },
        { "v-clip", "dpmpp-2m", 0 },
        { "v-clip", "dpmpp-2m-sde", 0 },
        { "x0-threshold", "ddpm", 0 },
        { "x0-threshold", "ddim", 0 },
        { "x0-threshold", "dpmpp-2m", 0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Samples_match_torchsharp_given_the_same_noise(string objective, string sampler, double eta)
    {
        var diffusion = objective switch
        {
            "eps" => EpsSchedule.Diffusion,
            "v-clip" => VClipSchedule.Diffusion,
            _ => X0ThresholdSchedule.Diffusion,
        };
        var kind = sampler switch
        {
            "ddpm" => SamplerKind.Ddpm,
            "ddim" => SamplerKind.Ddim,
            "dpmpp-2m-sde" => SamplerKind.DpmSolver2MSde,
            _ => SamplerKind.DpmSolver2M,
        };
        var entry = TestModels.Small(diffusion);
        const int count = 4, steps = 10;
        const ulong seed = 21;

        using var model = TestModels.Seeded(entry, seed: 3);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);

        float[] expected;
        using (var generator = new Generator(seed))
        using (var images = diffusion.Sample(model, entry.BatchShape(count), kind, steps, eta, generator))
            expected = images.data<float>().ToArray();
        using var noise = new TorchNoise(seed);
        float[] actual = onnx.Sample(count, kind, steps, eta: eta, noise: noise);

        double diff = expected.Zip(actual, (a, b) => Math.Abs((double)a - b)).Max();
        double scale = expected.Max(v => Math.Abs((double)v));
        log.WriteLine($"{objective} {sampler} eta {eta}: max |ORT - TorchSharp| = {diff:E2} over samples up to {scale:F2}");
        Assert.True(diff <= Tolerance, $"{objective} {sampler}: max abs diff {diff:E3} > {Tolerance:E0}");
        // The samples are not trivially equal: the clip/threshold cases end in [-1, 1], the others spread wider.
        Assert.True(scale > 0.5, $"samples up to {scale}");
    }

    [Theory]
    [InlineData("ddim", 50)]
    [InlineData("dpmpp-2m", 20)]
    public void The_fashion_mnist_model_samples_as_in_torchsharp(string sampler, int steps)
    {
        // The seed model with a 50-step DDIM chain and the few-step solver the project samples with (its full 300-step
        // DDPM chain takes a minute; the small models above cover DDPM's every step).
        var entry = ModelCatalog.Find("FashionMnistUNet")!;
        var kind = sampler == "ddim" ? SamplerKind.Ddim : SamplerKind.DpmSolver2M;
        using var model = TestModels.Seeded(entry, seed: 7);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        float[] expected;
        using (var generator = new Generator(5))
        using (var images = entry.Diffusion.Sample(model, entry.BatchShape(2), kind, steps, 0, generator))
            expected = images.data<float>().ToArray();
        using var noise = new TorchNoise(5);
        float[] actual = onnx.Sample(2, kind, steps, noise: noise);
        double diff = expected.Zip(actual, (a, b) => Math.Abs((double)a - b)).Max();
        log.WriteLine($"FashionMnistUNet {sampler} {steps}: max |ORT - TorchSharp| = {diff:E2} over samples up to {expected.Max(v => Math.Abs(v)):F2}");
        Assert.True(diff <= Tolerance, $"max abs diff {diff:E3} > {Tolerance:E0}");
    }

    [Fact]
    public void Sample_takes_the_runtimes_sampler_enum() =>
        // One enum for both backends (Ddpm.Core's), so a sampler named for a checkpoint names the same one for a file.
        Assert.Equal(typeof(SamplerKind),
                     typeof(OnnxDiffusionModel).GetMethod(nameof(OnnxDiffusionModel.Sample))!.GetParameters().Single(p => p.Name == "sampler").ParameterType);

    [Fact]
    public void A_different_noise_stream_draws_different_images()
    {
        // The comparison above would pass for a sampler that ignores its noise if the tolerance were loose: it is not.
        var entry = TestModels.Small(EpsSchedule.Diffusion);
        using var model = TestModels.Seeded(entry, seed: 3);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        using var a = new TorchNoise(1);
        using var b = new TorchNoise(2);
        var first = onnx.Sample(2, SamplerKind.Ddpm, noise: a);
        var second = onnx.Sample(2, SamplerKind.Ddpm, noise: b);
        Assert.True(first.Zip(second, (x, y) => Math.Abs(x - y)).Max() > 0.1);
        // And the package's own seeded noise is reproducible.
        Assert.Equal(onnx.Sample(2, SamplerKind.DpmSolver2M, steps: 5, seed: 9), onnx.Sample(2, SamplerKind.DpmSolver2M, steps: 5, seed: 9));
    }

    [Fact]
    public void Sample_defaults_to_the_runtimes_default_sampler()
    {
        // Ddpm.Onnx cannot reference the runtime's SpecDefaults (it carries no TorchSharp), so this holds the two together.
        var parameters = typeof(OnnxDiffusionModel).GetMethod(nameof(OnnxDiffusionModel.Sample))!.GetParameters();
        Assert.Equal(SamplerKind.DpmSolver2MSde, parameters.Single(p => p.Name == "sampler").DefaultValue);
        Assert.Equal(SpecDefaults.Sampler, (SamplerKind)parameters.Single(p => p.Name == "sampler").DefaultValue!);
        Assert.Equal(SpecDefaults.SamplerSteps, parameters.Single(p => p.Name == "steps").DefaultValue);
    }

    [Fact]
    public void The_schedule_read_from_the_file_is_the_training_programs()
    {
        var entry = TestModels.Small(VClipSchedule.Diffusion);
        using var model = TestModels.Seeded(entry, seed: 3);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        var tables = VClipSchedule.Tables;
        Assert.Equal("cosine", onnx.ScheduleName);
        Assert.Equal("v", onnx.Objective);
        Assert.True(onnx.ClipX0);
        Assert.Equal(tables.Betas, onnx.Schedule.Betas);
        Assert.Equal(tables.AlphasCumprod, onnx.Schedule.AlphasCumprod);
        Assert.Equal(tables.SqrtAlphasCumprod, onnx.Schedule.SqrtAlphasCumprod);
        Assert.Equal(tables.SqrtOneMinusAlphasCumprod, onnx.Schedule.SqrtOneMinusAlphasCumprod);
        Assert.Equal(tables.SqrtRecipAlphas, onnx.Schedule.SqrtRecipAlphas);
        Assert.Equal(tables.PosteriorVariance, onnx.Schedule.PosteriorVariance);
        Assert.Equal((1, 8), (onnx.Channels, onnx.ImageSize));
        Assert.Equal("SmallUNet", onnx.Name);
    }

    [Fact]
    public void Dynamic_thresholding_matches_the_closed_form()
    {
        // One image of 5 values, p = 0.5: the median of |x| is 2, so x is clamped to [-2, 2] and halved.
        float[] x0 = { -3f, 1f, 2f, 0.5f, 4f };
        DynamicThresholding.Apply(x0, 1, 0.5);
        Assert.Equal(new[] { -1f, 0.5f, 1f, 0.25f, 1f }, x0);
        // Below 1 the limit is 1: nothing changes.
        float[] small = { 0.2f, -0.9f };
        DynamicThresholding.Apply(small, 1, 0.9);
        Assert.Equal(new[] { 0.2f, -0.9f }, small);
    }
}
