using Ddpm.Diffusion;
using Ddpm.Models;
using Ddpm.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Specs.Tests;

/// <summary>
/// A real build: the three specs in the repository's specs/ compile into Ddpm.Models (through the generator's build
/// props), this project's own specs into this project; their models, schedules and catalog entries are checked here.
/// </summary>
public class CompiledSpecTests
{
    public static readonly TheoryData<string, string> Specs = new()
    {
        { "fashion-mnist.yaml", "FashionMnistUNet" },
        { "cifar10.yaml", "Cifar10UNet" },
        { "mnist-cosine.yaml", "MnistCosineUNet" },
    };

    static string SpecPath(string file) => Path.Combine(AppContext.BaseDirectory, "specs", file);

    [Fact]
    public void The_generated_types_exist_with_the_declared_shapes()
    {
        Assert.Equal((1, 28), (FashionMnistUNet.Channels, FashionMnistUNet.ImageSize));
        Assert.Equal((3, 32), (Cifar10UNet.Channels, Cifar10UNet.ImageSize));
        Assert.Equal((1, 28), (MnistCosineUNet.Channels, MnistCosineUNet.ImageSize));
        Assert.Equal((ScheduleKind.Linear, 300), (FashionMnistSchedule.Kind, FashionMnistSchedule.Timesteps));
        Assert.Equal((ScheduleKind.Linear, 1000, 1e-4, 0.02), (Cifar10Schedule.Kind, Cifar10Schedule.Timesteps, Cifar10Schedule.BetaStart, Cifar10Schedule.BetaEnd));
        Assert.Equal((ScheduleKind.Cosine, 500), (MnistCosineSchedule.Kind, MnistCosineSchedule.Timesteps));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Every_spec_is_registered_in_the_model_catalog(string file, string model)
    {
        ModelEntry entry = Assert.IsType<ModelEntry>(ModelCatalog.Find(file));
        Assert.Equal((model, file), (entry.Name, entry.SpecFile));
        Assert.Same(entry, ModelCatalog.Find(model));
        Assert.Same(entry, ModelCatalog.Find(Path.GetFileNameWithoutExtension(file)));
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void Every_model_runs_a_forward_pass_and_has_its_generated_parameter_count(string file, string model)
    {
        ModelEntry entry = ModelCatalog.Find(file)!;
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var module = entry.CreateModel();
        Assert.Equal(entry.ParameterCount, module.parameters().Sum(p => p.numel()));
        var images = randn(entry.BatchShape(2));
        var timesteps = tensor(new long[] { 0, entry.Schedule.Timesteps - 1 });
        var noise = module.forward(images, timesteps);
        Assert.Equal(entry.BatchShape(2), noise.shape);
        Assert.True(noise.isfinite().all().item<bool>(), model);
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void SpecFile_reads_each_spec_at_run_time_with_the_compiled_hash_and_training(string file, string model)
    {
        ModelEntry entry = ModelCatalog.Find(file)!;
        SpecFile spec = SpecFile.Load(SpecPath(file));
        Assert.Equal(model, spec.ModelName);
        Assert.Equal("Ddpm.Models", spec.Namespace);
        Assert.Equal(entry.ArchitectureHash, spec.ArchitectureHash);
        Assert.True(spec.HasTraining);
        AssertSameSettings(entry.Training, spec.Training, "training");
    }

    /// <summary>Every public property, recursively: the catalog's object initializer must miss none of TrainingSpec's settings.</summary>
    static void AssertSameSettings(object expected, object actual, string path)
    {
        foreach (var property in expected.GetType().GetProperties())
        {
            object? e = property.GetValue(expected), a = property.GetValue(actual);
            if (e is OptimizerSpec or EvalSpec) AssertSameSettings(e, a!, path + "." + property.Name);
            else if (e is string[] list) Assert.Equal(list, (string[])a!); // training.log
            else Assert.True(Equals(e, a), $"{path}.{property.Name}: compiled {e}, read {a}");
        }
    }

    [Fact]
    public void The_training_settings_are_the_specs()
    {
        TrainingSpec cifar = ModelCatalog.Find("cifar10.yaml")!.Training;
        Assert.Equal(("cifar10:data/cifar-10-batches-bin", 800000, LossKind.L2, 2e-4, 0.9999), (cifar.Dataset, cifar.Steps!.Value, cifar.Loss, cifar.Optimizer.Lr, cifar.EmaDecay));
        TrainingSpec fashion = ModelCatalog.Find("fashion-mnist.yaml")!.Training;
        Assert.Equal(("fashion-mnist", 128, 6, LossKind.Huber, 1e-3, true, 1000), (fashion.Dataset, fashion.BatchSize, fashion.Epochs, fashion.Loss, fashion.Optimizer.Lr, fashion.RandomFlip, fashion.SampleEvery));
        Assert.Null(fashion.Steps);
        Assert.False(ModelCatalog.Find("mnist-cosine")!.Training.RandomFlip);
    }

    [Fact]
    public void The_schedules_carry_their_objective_and_x0_treatment_into_their_diffusion()
    {
        Assert.Equal((Objective.V, true, 0.0), (Quality.QualitySchedule.Objective, Quality.QualitySchedule.ClipX0, Quality.QualitySchedule.DynamicThreshold));
        Assert.Equal(new DiffusionOptions(Objective.V, ClipX0: true), Quality.QualitySchedule.Diffusion.Options);
        Assert.Same(Quality.QualitySchedule.Diffusion, ModelCatalog.Find("quality.yaml")!.Diffusion);
        Assert.Equal(new DiffusionOptions(Objective.X0, DynamicThreshold: 0.995), ThresholdSchedule.Diffusion.Options);
        Assert.Equal(DiffusionOptions.Default, FashionMnistSchedule.Diffusion.Options);
        Assert.Equal(DiffusionOptions.Default, ModelCatalog.Find("cifar10.yaml")!.Diffusion.Options);
    }

    [Fact]
    public void The_quality_training_keys_are_compiled_as_SpecFile_reads_them()
    {
        ModelEntry entry = ModelCatalog.Find("quality.yaml")!;
        SpecFile spec = SpecFile.Load(SpecPath("quality.yaml"));
        Assert.Equal(entry.ArchitectureHash, spec.ArchitectureHash);
        AssertSameSettings(entry.Training, spec.Training, "training");
        TrainingSpec t = entry.Training;
        Assert.Equal((5.0, EmaWarmup.Ratio, 0.75, 2.5), (t.MinSnrGamma, t.EmaWarmup, t.EmaPower, t.EmaInvGamma));
        Assert.Equal((100, 16, SamplerKind.DpmSolver2M, 10), (t.Eval.Every, t.Eval.Samples, t.Eval.Sampler, t.Eval.Steps));
        // A spec whose objective changed after the build is not the compiled model.
        string text = File.ReadAllText(SpecPath("quality.yaml"));
        Assert.NotEqual(entry.ArchitectureHash, SpecFile.Parse(text.Replace("objective: v", "objective: eps"), "quality.yaml").ArchitectureHash);
        Assert.NotEqual(entry.ArchitectureHash, SpecFile.Parse(text.Replace("clip_x0: true", "clip_x0: false"), "quality.yaml").ArchitectureHash);
    }

    [Fact]
    public void The_hash_ignores_comments_and_layout_but_not_the_architecture()
    {
        string text = File.ReadAllText(SpecPath("fashion-mnist.yaml"));
        string hash = ModelCatalog.Find("fashion-mnist.yaml")!.ArchitectureHash;
        string reformatted = "# a comment\n" + text.Replace("dim_mults: [1, 2, 4]", "dim_mults:\n    - 1\n    - 2\n    - 4").Replace("epochs: 6", "epochs: 60");
        Assert.Equal(hash, SpecFile.Parse(reformatted, "fashion-mnist.yaml").ArchitectureHash);
        Assert.NotEqual(hash, SpecFile.Parse(text.Replace("heads: 4", "heads: 8"), "fashion-mnist.yaml").ArchitectureHash);
        Assert.NotEqual(hash, SpecFile.Parse(text.Replace("timesteps: 300", "timesteps: 301"), "fashion-mnist.yaml").ArchitectureHash);
    }

    [Fact]
    public void A_broken_spec_fails_to_load_with_file_line_and_column()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ddpm-broken-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, File.ReadAllText(SpecPath("fashion-mnist.yaml")).Replace("  batch_size: 128", "  batch_size: many"));
        try
        {
            var error = Assert.Throws<SpecFileException>(() => SpecFile.Load(path));
            Assert.Equal((23, 15), (error.Line, error.Column));
            Assert.Equal($"{path}:23:15: DDPM103: 'training.batch_size' must be an integer, got 'many'", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
