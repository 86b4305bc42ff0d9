using Ddpm.Conditioning;
using Ddpm.Diffusion;
using static TorchSharp.torch;

namespace Ddpm.Onnx.Tests;

/// <summary>
/// A class-conditional model on ONNX Runtime: classes chosen by name as for checkpoints, guided samples equal to the
/// runtime's guided samples given the same noise, and the rules of conditional sampling (a class per image, guidance only
/// with a learned null class) kept the same way.
/// </summary>
[Collection("torch")]
public sealed class OnnxConditionalTests(Xunit.Abstractions.ITestOutputHelper log)
{
    /// <summary>As in OnnxSamplingTests (one model call differs by ~2e-6; 1e-4 leaves a tenfold margin over a chain).</summary>
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("ddpm", 3.0)]
    [InlineData("ddim", 1.0)]
    [InlineData("dpmpp-2m", 3.0)]
    [InlineData("dpmpp-2m", 0.0)]
    [InlineData("dpmpp-2m-sde", 3.0)]
    public void Guided_samples_match_the_runtimes_given_the_same_noise(string sampler, double guidance)
    {
        var entry = TestModels.SmallConditional(EpsSchedule.Diffusion);
        var kind = sampler switch
        {
            "ddpm" => SamplerKind.Ddpm,
            "ddim" => SamplerKind.Ddim,
            "dpmpp-2m-sde" => SamplerKind.DpmSolver2MSde,
            _ => SamplerKind.DpmSolver2M,
        };
        using var model = TestModels.Seeded(entry, seed: 4);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        int[] labels = { 2, 0, 1, 3 }; // the three classes and the null class
        const long seed = 17;

        using var drawn = Sampling.Draw(model, entry.Diffusion, entry.BatchShape(1), labels.Length, kind, 10, 0, seed, batchSize: 64,
                                        condition: new ClassCondition(labels, guidance));
        float[] expected = drawn.data<float>().ToArray();
        using var noise = new TorchNoise(unchecked((ulong)seed));
        float[] actual = onnx.Sample(labels.Length, kind, 10, noise: noise, condition: new OnnxClassCondition(labels, guidance));

        double diff = expected.Zip(actual, (a, b) => Math.Abs((double)a - b)).Max();
        log.WriteLine($"{sampler} guidance {guidance}: max |ORT - TorchSharp| = {diff:E2} over samples up to {expected.Max(v => Math.Abs(v)):F2}");
        Assert.True(diff <= Tolerance, $"{sampler} guidance {guidance}: max abs diff {diff:E3} > {Tolerance:E0}");
    }

    [Fact]
    public void Guidance_combines_the_class_and_null_predictions_of_one_call()
    {
        // uncond + s (cond - uncond), checked against two plain calls at s = 2.5.
        var entry = TestModels.SmallConditional(EpsSchedule.Diffusion);
        using var model = TestModels.Seeded(entry, seed: 5);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        manual_seed(3);
        using var x = randn(2, 1, 8, 8);
        float[] images = x.data<float>().ToArray();
        long[] t = { 10, 40 };
        float[] conditional = onnx.Predict(images, t, new long[] { 1, 2 });
        float[] unconditional = onnx.Predict(images, t, new long[] { 3, 3 });
        float[] guided = onnx.GuidedPredict(images, t, new long[] { 1, 2 }, 2.5);
        double worst = 0;
        for (int i = 0; i < guided.Length; i++)
            worst = Math.Max(worst, Math.Abs(guided[i] - (unconditional[i] + 2.5 * (conditional[i] - unconditional[i]))));
        Assert.True(worst < 1e-5, $"max deviation {worst}");
        Assert.True(conditional.Zip(unconditional, (a, b) => Math.Abs(a - b)).Max() > 1e-2, "the labels change the prediction");
        // Without labels, a conditional model's call is the null class's, as the generated forward(x, t).
        Assert.Equal(onnx.Predict(images, t, new long[] { 3, 3 }), onnx.Predict(images, t));
    }

    [Fact]
    public void Classes_are_chosen_by_name_index_all_or_none_as_for_checkpoints()
    {
        var entry = TestModels.SmallConditional(EpsSchedule.Diffusion);
        using var model = TestModels.Seeded(entry, seed: 1);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        Assert.True(onnx.IsConditional);
        Assert.Equal(3, onnx.Classes);
        Assert.Equal(new[] { "vertical bar", "horizontal bar", "box" }, onnx.ClassNames); // the synthetic data set's shapes
        Assert.Equal((0.2, 2.0), (onnx.ClassDropout, onnx.Guidance));

        var box = onnx.ChooseClasses("BO", 3);
        Assert.Equal(new[] { 2, 2, 2 }, box.Labels);
        Assert.Equal(2.0, box.Guidance); // the declared scale
        Assert.Equal(new[] { 1, 1 }, onnx.ChooseClasses("1", 2, guidance: 4).Labels);
        Assert.Equal(4.0, onnx.ChooseClasses("1", 2, guidance: 4).Guidance);
        Assert.Equal(new[] { 0, 0, 1, 1, 2, 2 }, onnx.ChooseClasses("all", 5).Labels); // rounds up to whole rows
        var none = onnx.ChooseClasses("none", 2);
        Assert.Equal(new[] { 3, 3 }, none.Labels);
        Assert.Equal(1.0, none.Guidance);

        Assert.Contains("SmallConditionalUNet has no class 'shoe'; its classes are 0 vertical bar, 1 horizontal bar, 2 box",
                        Assert.Throws<ArgumentException>(() => onnx.ChooseClasses("shoe", 1)).Message);
        Assert.Contains("The guidance scale must be in [0, 100], got 200",
                        Assert.Throws<ArgumentException>(() => onnx.ChooseClasses("box", 1, guidance: 200)).Message);
    }

    [Fact]
    public void A_conditional_model_needs_a_class_per_image_and_an_unconditional_one_takes_none()
    {
        var entry = TestModels.SmallConditional(EpsSchedule.Diffusion);
        using var model = TestModels.Seeded(entry, seed: 1);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        var missing = Assert.Throws<ArgumentException>(() => onnx.Sample(2, SamplerKind.DpmSolver2M, 3));
        Assert.StartsWith("SmallConditionalUNet is class-conditional (3 classes: 0 vertical bar, 1 horizontal bar, 2 box): say which class to draw", missing.Message);
        Assert.Contains("2 class labels for 3 images",
                        Assert.Throws<ArgumentException>(() => onnx.Sample(3, SamplerKind.Ddim, 3, condition: new OnnxClassCondition(new[] { 0, 1 }, 1))).Message);
        Assert.Contains("Class label 4 is outside 0 .. 3",
                        Assert.Throws<ArgumentException>(() => onnx.Sample(1, SamplerKind.Ddim, 3, condition: new OnnxClassCondition(new[] { 4 }, 1))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => onnx.Predict(new float[64], new long[] { 0 }, new long[] { -1 }));

        var plainEntry = TestModels.Small(EpsSchedule.Diffusion);
        using var plain = TestModels.Seeded(plainEntry, seed: 1);
        using var plainFile = TestModels.Export(plain, plainEntry);
        using var unconditional = OnnxDiffusionModel.Load(plainFile.Path);
        Assert.False(unconditional.IsConditional);
        Assert.Empty(unconditional.ClassNames);
        Assert.Contains("SmallUNet is not class-conditional",
                        Assert.Throws<ArgumentException>(() => unconditional.Sample(1, SamplerKind.Ddim, 3, condition: new OnnxClassCondition(new[] { 0 }, 1))).Message);
        Assert.Throws<InvalidOperationException>(() => unconditional.ChooseClasses("0", 1));
        Assert.Throws<ArgumentException>(() => unconditional.Predict(new float[64], new long[] { 0 }, new long[] { 0 }));
    }

    [Fact]
    public void Guidance_needs_a_model_that_learned_the_null_class()
    {
        // The same network declared with class_dropout 0: guidance 1 only, by the runtime's rule (ClassRules).
        var entry = TestModels.SmallConditional(EpsSchedule.Diffusion) with { Conditioning = new ClassConditioning(3, 0, 1) };
        using var model = TestModels.Seeded(entry, seed: 1);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        Assert.Equal(0.0, onnx.ClassDropout);
        Assert.Single(onnx.ChooseClasses("box", 1).Labels);
        Assert.Contains("Guidance 3 needs the unconditional (null-class) prediction, which this model never learned",
                        Assert.Throws<ArgumentException>(() => onnx.ChooseClasses("box", 1, guidance: 3)).Message);
    }
}
