using Ddpm.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Specs.Tests;

/// <summary>
/// The two front ends on one architecture, both compiled into the model library: specs/fashion-mnist.yaml's
/// FashionMnistUNet and the attributed TutorialUNet give the same module (state-dict keys and shapes, parameter count,
/// and with the same seed the same weights and outputs), the same schedule and the same architecture hash; and the
/// library holds each model exactly once.
/// </summary>
public class EquivalenceTests
{
    [Fact]
    public void Same_state_dict_keys_shapes_and_parameter_count()
    {
        using var fromYaml = new FashionMnistUNet();
        using var fromAttributes = new TutorialUNet();
        Assert.Equal(TutorialUNet.ParameterCount, FashionMnistUNet.ParameterCount);
        Assert.Equal(fromAttributes.state_dict().Select(p => (p.Key, string.Join("x", p.Value.shape))),
                     fromYaml.state_dict().Select(p => (p.Key, string.Join("x", p.Value.shape))));
    }

    [Fact]
    public void Same_weights_and_outputs_from_the_same_seed()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var fromYaml = new FashionMnistUNet();
        manual_seed(7);
        using var fromAttributes = new TutorialUNet();
        manual_seed(8);
        var images = randn(3, 1, 28, 28);
        var timesteps = tensor(new long[] { 0, 150, 299 });
        fromYaml.eval();
        fromAttributes.eval();
        using var _ = no_grad();
        Assert.True(fromYaml.forward(images, timesteps).eq(fromAttributes.forward(images, timesteps)).all().item<bool>());
    }

    [Fact]
    public void Same_schedule()
    {
        Assert.Equal(TutorialSchedule.Fingerprint, FashionMnistSchedule.Fingerprint);
        Assert.Equal(TutorialSchedule.Tables.AlphasCumprod, FashionMnistSchedule.Tables.AlphasCumprod);
        Assert.Equal(TutorialSchedule.Tables.PosteriorVariance, FashionMnistSchedule.Tables.PosteriorVariance);
    }

    [Fact]
    public void The_attributed_model_is_in_the_catalog_with_the_specs_architecture_hash_and_default_training()
    {
        ModelEntry attributed = Assert.IsType<ModelEntry>(ModelCatalog.Find("TutorialUNet"));
        ModelEntry yaml = Assert.IsType<ModelEntry>(ModelCatalog.Find("FashionMnistUNet"));
        Assert.Equal("Tutorial.cs", attributed.SpecFile);
        Assert.Equal(yaml.ArchitectureHash, attributed.ArchitectureHash);
        Assert.Same(TutorialSchedule.Diffusion, attributed.Diffusion);
        Assert.Equal((1, 28, TutorialUNet.ParameterCount), (attributed.Channels, attributed.ImageSize, attributed.ParameterCount));
        Assert.Equal(SpecWriter.TrainingYaml(new TrainingSpec()), SpecWriter.TrainingYaml(attributed.Training));
        using var model = attributed.CreateModel();
        Assert.IsType<TutorialUNet>(model);
    }

    [Fact]
    public void The_library_holds_every_repository_spec_and_attributed_model_once()
    {
        // The registrations' factories are generated code: the assembly they live in is the one that declared the model.
        var library = ModelCatalog.All.Where(e => e.CreateModel.Method.Module.Assembly == typeof(ModelLibrary).Assembly).ToList();
        Assert.Equal(new[] { "Cifar10UNet", "FashionMnistConditionalUNet", "FashionMnistTunedUNet", "FashionMnistUNet", "MnistCosineUNet", "TutorialUNet" }, library.Select(e => e.Name));
        Assert.Equal(new[] { "cifar10.yaml", "fashion-mnist-conditional.yaml", "fashion-mnist-tuned.yaml", "fashion-mnist.yaml", "mnist-cosine.yaml", "Tutorial.cs" }, library.Select(e => e.SpecFile));
        // This project compiles only its own specs: none of the library's models is declared twice.
        Assert.DoesNotContain(typeof(EquivalenceTests).Assembly.GetTypes(), t => library.Any(e => e.Name == t.Name));
    }

    [Fact]
    public void The_tuned_spec_is_the_tutorials_U_Net_with_the_ablations_schedule_objective_and_weighting()
    {
        using var tuned = new FashionMnistTunedUNet();
        using var tutorial = new FashionMnistUNet();
        Assert.Equal(tutorial.state_dict().Select(p => (p.Key, string.Join("x", p.Value.shape))),
                     tuned.state_dict().Select(p => (p.Key, string.Join("x", p.Value.shape))));
        Assert.Equal((ScheduleKind.Cosine, 300, Objective.V),
                     (FashionMnistTunedSchedule.Kind, FashionMnistTunedSchedule.Timesteps, FashionMnistTunedSchedule.Objective));
        var training = ModelCatalog.Find("fashion-mnist-tuned.yaml")!.Training;
        Assert.Equal((5.0, 128, LossKind.Huber, 1e-3), (training.MinSnrGamma, training.BatchSize, training.Loss, training.Optimizer.Lr));
        Assert.Equal((SamplerKind.DpmSolver2MSde, 20), (training.Eval.Sampler, training.Eval.Steps));
    }
}
