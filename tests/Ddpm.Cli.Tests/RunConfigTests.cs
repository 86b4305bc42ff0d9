using Ddpm.Models;
using Ddpm.Specs;

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

        string config = RunConfig.Write(entry, t, "cpu", "tcmalloc");
        string training = config[config.IndexOf("training:", StringComparison.Ordinal)..];
        SpecDocument read = SpecYaml.Read("schedule:\n  name: S\n  kind: linear\n" + training);
        Assert.Empty(read.Errors);
        Assert.Equal(SpecYaml.Describe(t), SpecYaml.Describe(read.Training));
        Assert.Contains("  eval: { every: 100, samples: 16, sampler: dpmpp-2m, steps: 10 }", config);
    }

    [Fact]
    public void The_schedules_objective_and_x0_treatment_are_recorded()
    {
        string config = RunConfig.Write(ModelCatalog.Find("TinyUNet")!, new TrainingSpec(), "cpu", "tcmalloc");
        Assert.Contains("diffusion: { objective: eps, clip_x0: false, dynamic_threshold: 0 }", config);
    }
}
