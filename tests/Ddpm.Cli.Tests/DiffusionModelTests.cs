using Ddpm.Data;
using Ddpm.Imaging;
using Ddpm.Specs;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli.Tests;

/// <summary>The public API (<see cref="DiffusionModel"/>) on the tiny model: create, train, save, load, sample.</summary>
[Collection("cli")] // training changes torch's thread count and seed; keep apart from the CLI's runs
public sealed class DiffusionModelTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-api-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static TrainingSpec FewSteps(int steps, double emaDecay)
    {
        var training = new TrainingSpec { Dataset = "synthetic", BatchSize = 8, Steps = steps, EmaDecay = emaDecay, Seed = 5 };
        return training;
    }

    private static float[] Weights(nn.Module module) =>
        module.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();

    [Fact]
    public void Create_by_declared_type_gives_the_catalog_model_with_seeded_fresh_weights()
    {
        using var a = DiffusionModel.Create<TinyUNet>(seed: 1);
        using var b = DiffusionModel.Create<TinyUNet>(seed: 1);
        using var c = DiffusionModel.CreateByName("TinyUNet", seed: 2);
        Assert.Equal(("TinyUNet", 0L, SamplingWeights.Raw), (a.Name, a.Step, a.Weights));
        Assert.IsType<TinyUNet>(a.Module);
        Assert.Equal(Weights(a.Module), Weights(b.Module));
        Assert.NotEqual(Weights(a.Module), Weights(c.Module));
        Assert.Equal(30, a.Training.Steps); // the declared training settings, as a copy
        a.Training.Steps = 1;
        Assert.Equal(30, a.Training.Steps);
    }

    [Fact]
    public void The_default_sampler_is_sde_dpm_solver_2m_at_20_model_calls_in_one_place()
    {
        // Chosen by measurement (docs/quality.md): 21.95 against DDPM-300's 22.41 on the one-epoch tutorial model.
        Assert.Equal((SamplerKind.DpmSolver2MSde, 20), (SpecDefaults.Sampler, SpecDefaults.SamplerSteps));
        Assert.Equal("dpmpp-2m-sde", SpecYaml.Spelling(SpecDefaults.Sampler));
        foreach (string method in new[] { nameof(DiffusionModel.Sample), nameof(DiffusionModel.SampleGrid), nameof(DiffusionModel.Evaluate) })
        {
            var parameters = typeof(DiffusionModel).GetMethod(method)!.GetParameters();
            Assert.Equal(SamplerKind.DpmSolver2MSde, parameters.Single(p => p.Name == "sampler").DefaultValue);
            Assert.Equal(20, parameters.Single(p => p.Name == "steps").DefaultValue);
        }
        Assert.Equal((SamplerKind.DpmSolver2MSde, 20), (new TrainingSpec().Eval.Sampler, new TrainingSpec().Eval.Steps));
        // Fewer timesteps than 20: all of them.
        Assert.Equal((20, 20, 10, 1), (SpecDefaults.SamplerStepsFor(300), SpecDefaults.SamplerStepsFor(20), SpecDefaults.SamplerStepsFor(10), SpecDefaults.SamplerStepsFor(1)));
    }

    [Fact]
    public void A_type_or_name_that_is_not_a_registered_model_is_refused_with_the_reason()
    {
        var byType = Assert.Throws<ArgumentException>(() => DiffusionModel.Create<NotAModel>());
        Assert.Contains("is not a registered Ddpm model", byType.Message);
        var byName = Assert.Throws<ArgumentException>(() => DiffusionModel.CreateByName("NoSuchUNet"));
        Assert.Contains("Unknown model 'NoSuchUNet'. Compiled models:", byName.Message);
        Assert.Contains("TinyUNet", byName.Message);
    }

    [Fact]
    public void Train_reports_every_step_keeps_the_ema_for_sampling_and_saves_a_checkpoint_that_loads_both_weights()
    {
        using var model = DiffusionModel.Create<TinyUNet>(seed: 3);
        var steps = new List<long>();
        model.Train(Datasets.Synthetic(1, 8, count: 64), FewSteps(6, emaDecay: 0.9), p => steps.Add(p.Step));
        Assert.Equal([1L, 2, 3, 4, 5, 6], steps);
        Assert.Equal((6L, SamplingWeights.Ema, "synthetic"), (model.Step, model.Weights, model.Dataset));

        string path = Path.Combine(root, "sub", "tiny.ckpt");
        model.Save(path);
        using var ema = DiffusionModel.Load(path, SamplingWeights.Ema);
        using var raw = DiffusionModel.Load(path, SamplingWeights.Raw);
        using var auto = DiffusionModel.Load(path);
        Assert.Equal(Weights(model.Module), Weights(ema.Module));
        Assert.NotEqual(Weights(ema.Module), Weights(raw.Module)); // six steps of an average with decay 0.9 lag the weights
        Assert.Equal((SamplingWeights.Ema, 6L, "synthetic"), (auto.Weights, auto.Step, auto.Dataset));
    }

    [Fact]
    public void Without_ema_training_samples_from_the_trained_weights()
    {
        using var model = DiffusionModel.Create<TinyUNet>(seed: 3);
        var before = Weights(model.Module);
        model.Train(Datasets.Synthetic(1, 8, count: 32), FewSteps(2, emaDecay: 0));
        Assert.Equal(SamplingWeights.Raw, model.Weights);
        Assert.NotEqual(before, Weights(model.Module));
    }

    [Fact]
    public void Sample_is_reproducible_by_seed_and_the_grid_is_the_sampled_images()
    {
        using var model = DiffusionModel.Create<TinyUNet>(seed: 4);
        using var first = model.Sample(count: 3, SamplerKind.DpmSolver2M, steps: 4, seed: 9);
        using var again = model.Sample(count: 3, SamplerKind.DpmSolver2M, steps: 4, seed: 9);
        using var other = model.Sample(count: 3, SamplerKind.Ddim, steps: 4, seed: 10);
        Assert.Equal(new long[] { 3, 1, 8, 8 }, first.shape);
        Assert.Equal(DeviceType.CPU, first.device_type);
        Assert.True(first.eq(again).all().item<bool>());
        Assert.False(first.eq(other).all().item<bool>());

        string grid = Path.Combine(root, "grid.png"), expected = Path.Combine(root, "expected.png");
        model.SampleGrid(grid, count: 3, SamplerKind.DpmSolver2M, steps: 4, seed: 9);
        ImageGrid.SavePng(first, expected, columns: 2, scale: 2); // 3 images: 2 columns; 8-pixel images shown twice as large
        Assert.Equal(File.ReadAllBytes(expected), File.ReadAllBytes(grid));
    }

    [Fact]
    public void Bad_arguments_get_one_clear_error()
    {
        using var model = DiffusionModel.Create<TinyUNet>();
        var shape = Assert.Throws<ArgumentException>(() => model.Train(Datasets.Synthetic(3, 8, count: 8), FewSteps(1, 0)));
        Assert.StartsWith("TinyUNet takes 1x8x8 images; the data holds 3x8x8.", shape.Message);
        var steps = Assert.Throws<ArgumentOutOfRangeException>(() => model.Sample(count: 1, SamplerKind.Ddim, steps: 21));
        Assert.Contains("takes 1 to 20 model calls", steps.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Sample(count: 0));
        var save = Assert.Throws<InvalidOperationException>(() => model.Save(Path.Combine(root, "x.ckpt")));
        Assert.Equal("TinyUNet has not been trained or loaded here: fresh weights are not saved (train them first).", save.Message);
        Assert.Throws<FileNotFoundException>(() => DiffusionModel.Load(Path.Combine(root, "missing.ckpt")));
        Assert.False(File.Exists(Path.Combine(root, "x.ckpt")));
    }

    [Fact]
    public void Save_after_load_writes_the_loaded_checkpoint_whole_and_refuses_once_the_source_changed()
    {
        string source = OutputSafetyTests.TinyCheckpoint(root, "source.ckpt");
        string copy = Path.Combine(root, "copy", "copy.ckpt");
        using (var model = DiffusionModel.Load(source))
        {
            model.Save(copy);
            model.Save(source); // onto itself: nothing to do
        }
        Assert.Equal(File.ReadAllBytes(source), File.ReadAllBytes(copy));
        using (var reloaded = DiffusionModel.Load(copy))
        using (var original = DiffusionModel.Load(source))
        using (var a = reloaded.Sample(count: 2, steps: 4, seed: 7))
        using (var b = original.Sample(count: 2, steps: 4, seed: 7))
            Assert.True(a.equal(b).all().item<bool>());

        using var stale = DiffusionModel.Load(copy);
        File.WriteAllBytes(copy, File.ReadAllBytes(copy)[..100]);
        var error = Assert.Throws<InvalidOperationException>(() => stale.Save(Path.Combine(root, "again.ckpt")));
        Assert.Equal($"{Path.GetFullPath(copy)} has changed since TinyUNet was loaded from it: load it again to save it.", error.Message);
        Assert.False(File.Exists(Path.Combine(root, "again.ckpt")));
    }

    [Fact]
    public void SampleImages_gives_the_same_images_as_Sample_as_floats_with_their_shape()
    {
        using var model = DiffusionModel.Load(OutputSafetyTests.TinyCheckpoint(root, "floats.ckpt"));
        using var tensor = model.Sample(count: 3, steps: 4, seed: 11);
        var images = model.SampleImages(count: 3, steps: 4, seed: 11);
        Assert.Equal((3, 1, 8, 8), (images.Count, images.Channels, images.Height, images.Width));
        Assert.Equal(tensor.data<float>().ToArray(), images.Values);
        Assert.Equal(tensor[2, 0, 5, 6].item<float>(), images[2, 0, 5, 6]);
        byte[] bytes = images.ToBytes(1);
        Assert.Equal(64, bytes.Length);
        Assert.Equal(Ddpm.Imaging.GridLayout.ToByte(images[1, 0, 3, 4]), bytes[3 * 8 + 4]);
        Assert.Throws<ArgumentOutOfRangeException>(() => images.ToBytes(3));
    }

    /// <summary>A module of the right signature that no declaration registered.</summary>
    private sealed class NotAModel() : nn.Module<Tensor, Tensor, Tensor>("NotAModel")
    {
        public override Tensor forward(Tensor x, Tensor t) => x;
    }
}
