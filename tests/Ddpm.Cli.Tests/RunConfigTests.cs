using Ddpm.Models;
using Ddpm.Specs;
using Ddpm.Training;

namespace Ddpm.Cli.Tests;

/// <summary>runs/&lt;name&gt;/config.yaml: its training section is a spec's, so the spec reader reads it back unchanged.</summary>
public class RunConfigTests
{
    [Fact]
    public void The_training_section_reads_back_as_the_settings_it_was_written_from()
    {
        ModelEntry entry = ModelCatalog.Find("TinyUNet")!;
        TrainingSpec t = entry.Training.Clone();
        t.MinSnrGamma = 5;
        t.EmaWarmup = EmaWarmup.None;
        t.EmaPower = 0.75;
        t.EmaInvGamma = 2.5;
        t.Eval = new EvalSpec { Every = 100, Samples = 16, Sampler = SamplerKind.DpmSolver2M, Steps = 10 };

        t.Dataset = "cifar10:data/a \"quoted\" folder";
        t.Steps = null;

        string config = RunConfig.Write(entry, t, "cpu", "tcmalloc (preloaded: /x/\"y\")");
        string training = config[config.IndexOf("training:", StringComparison.Ordinal)..];
        Assert.Equal(SpecWriter.TrainingYaml(t), training);
        SpecDocument read = SpecYaml.Read("schedule:\n  name: S\n  kind: linear\n" + training);
        Assert.Empty(read.Errors);
        Assert.Equal(SpecWriter.TrainingYaml(t), SpecWriter.TrainingYaml(read.Training));
        Assert.Contains("  eval: { every: 100, samples: 16, sampler: dpmpp-2m, steps: 10 }", config);
        Assert.Contains("  steps: null\n", config);

        var recorded = RunConfig.Read(config);
        Assert.Equal(("TinyUNet", entry.ArchitectureHash), (recorded.Model, recorded.ArchitectureHash));
        Assert.Equal(SpecWriter.TrainingYaml(t), SpecWriter.TrainingYaml(recorded.Training!));
        Assert.Equal(("cifar10:data/a \"quoted\" folder", t.BatchSize), (recorded.Dataset, recorded.BatchSize));
    }

    [Fact]
    public void A_config_of_an_earlier_ddpm_reads_with_defaults_for_what_it_lacks()
    {
        const string config = "model: FashionMnistUNet\narchitecture_hash: 05dafe85967b1901\ntraining:\n  dataset: \"fashion-mnist\"\n  batch_size: 128\n  loss: huber\n";
        var recorded = RunConfig.Read(config);
        Assert.Equal(("FashionMnistUNet", "fashion-mnist", 128), (recorded.Model, recorded.Dataset, recorded.BatchSize));
        Assert.Equal(new TrainingSpec().EmaDecay, recorded.Training!.EmaDecay);
        Assert.Null(RunConfig.Read("model: X\ntraining: { batch_size: many }\n").Training);
        Assert.Equal((null, null, null), (RunConfig.Read(": : :").Model, RunConfig.Read("[1, 2]").Model, RunConfig.Read("model: X\n").Training));
    }

    [Fact]
    public void The_schedules_objective_and_x0_treatment_are_recorded()
    {
        string config = RunConfig.Write(ModelCatalog.Find("TinyUNet")!, new TrainingSpec(), "cpu", "tcmalloc");
        Assert.Contains("diffusion: { objective: eps, clip_x0: false, dynamic_threshold: 0 }", config);
    }
}
