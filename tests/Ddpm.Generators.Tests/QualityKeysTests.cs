using Ddpm.Specs;

namespace Ddpm.Generators.Tests;

/// <summary>
/// The quality levers as SpecYaml reads them (the reader the generator and the runtime share): the
/// schedule's objective, clip_x0 and dynamic_threshold, and the training section's min-SNR, EMA
/// warm-up and evaluation keys: their defaults, their values, their canonical text and the hash.
/// </summary>
public class QualityKeysTests
{
    const string Minimal = """
        model:
          name: TinyUNet
          channels: 1
          image_size: 8
          dim: 8
          dim_mults: [1, 2]
        schedule:
          kind: linear
          timesteps: 10
        training:
          batch_size: 4
        """;

    const string Everything = """
        model:
          name: TinyUNet
          channels: 1
          image_size: 8
          dim: 8
          dim_mults: [1, 2]
        schedule:
          kind: linear
          timesteps: 10
          objective: v
          clip_x0: true
        training:
          batch_size: 4
          min_snr_gamma: 5
          ema_warmup: ratio
          ema_power: 0.75
          ema_inv_gamma: 2.5
          eval:
            every: 1000
            samples: 64
            sampler: dpmpp-2m
            steps: 20
        """;

    static SpecDocument Read(string yaml)
    {
        SpecDocument document = SpecYaml.Read(yaml);
        Assert.Empty(document.Errors);
        return document;
    }

    [Fact]
    public void Absent_keys_take_the_defaults_of_the_attributes_and_of_TrainingSpec()
    {
        SpecDocument document = Read(Minimal);
        ScheduleSection schedule = document.Schedule!;
        var attribute = new NoiseScheduleAttribute(ScheduleKind.Linear);
        Assert.Equal((Objective.Eps, false, 0.0), (schedule.Objective, schedule.ClipX0, schedule.DynamicThreshold));
        Assert.Equal((attribute.Objective, attribute.ClipX0, attribute.DynamicThreshold), (schedule.Objective, schedule.ClipX0, schedule.DynamicThreshold));

        TrainingSpec t = document.Training;
        Assert.Equal((EmaWarmup.Power, 2.0 / 3.0, 1.0, 0.0), (t.EmaWarmup, t.EmaPower, t.EmaInvGamma, t.MinSnrGamma));
        // training.eval samples with the project's one default sampler: SDE-DPM-Solver++(2M) at 20 model calls.
        Assert.Equal((0, 256, SamplerKind.DpmSolver2MSde, 20), (t.Eval.Every, t.Eval.Samples, t.Eval.Sampler, t.Eval.Steps));
        Assert.Equal((SpecDefaults.Sampler, SpecDefaults.SamplerSteps), (t.Eval.Sampler, t.Eval.Steps));
        Assert.Equal(SpecWriter.TrainingYaml(new TrainingSpec { BatchSize = 4 }), SpecWriter.TrainingYaml(t));

        // A partial eval mapping keeps the defaults of the keys it leaves out.
        TrainingSpec partial = Read(Minimal + "\n  eval: { every: 500 }\n").Training;
        Assert.Equal((500, 256, SamplerKind.DpmSolver2MSde, 20), (partial.Eval.Every, partial.Eval.Samples, partial.Eval.Sampler, partial.Eval.Steps));
    }

    [Fact]
    public void Every_key_is_read()
    {
        SpecDocument document = Read(Everything);
        Assert.Equal((Objective.V, true, 0.0), (document.Schedule!.Objective, document.Schedule.ClipX0, document.Schedule.DynamicThreshold));
        TrainingSpec t = document.Training;
        Assert.Equal((EmaWarmup.Ratio, 0.75, 2.5, 5.0), (t.EmaWarmup, t.EmaPower, t.EmaInvGamma, t.MinSnrGamma));
        Assert.Equal((1000, 64, SamplerKind.DpmSolver2M, 20), (t.Eval.Every, t.Eval.Samples, t.Eval.Sampler, t.Eval.Steps));

        ScheduleSection threshold = Read(Minimal.Replace("  timesteps: 10", "  timesteps: 10\n  objective: x0\n  dynamic_threshold: 0.995")).Schedule!;
        Assert.Equal((Objective.X0, false, 0.995), (threshold.Objective, threshold.ClipX0, threshold.DynamicThreshold));
    }

    [Theory]
    [InlineData("ddpm", SamplerKind.Ddpm)]
    [InlineData("ddim", SamplerKind.Ddim)]
    [InlineData("dpmpp-2m", SamplerKind.DpmSolver2M)]
    public void Sampler_names_map_to_SamplerKind_and_back(string name, SamplerKind kind)
    {
        Assert.Equal(kind, Read(Minimal + $"\n  eval: {{ sampler: {name} }}\n").Training.Eval.Sampler);
        Assert.Equal(name, SpecYaml.Spelling(kind));
    }

    [Fact]
    public void The_spellings_follow_the_enums_and_show_undefined_values_as_numbers()
    {
        Assert.Equal(Enum.GetNames<Objective>().Select(n => n.ToLowerInvariant()), SpecYaml.ObjectiveValues);
        Assert.Equal(Enum.GetNames<EmaWarmup>().Select(n => n.ToLowerInvariant()), SpecYaml.EmaWarmupValues);
        Assert.Equal(Enum.GetValues<SamplerKind>().Length, SpecYaml.SamplerValues.Length);
        Assert.Equal("7", SpecYaml.Spelling((Objective)7));
    }

    [Fact]
    public void The_writer_writes_every_training_key_with_its_value()
    {
        var training = Read(Everything).Training;
        string text = SpecWriter.TrainingYaml(training);
        foreach (string line in new[] { "  min_snr_gamma: 5", "  ema_warmup: ratio", "  ema_power: 0.75", "  ema_inv_gamma: 2.5",
                                        "  eval: { every: 1000, samples: 64, sampler: dpmpp-2m, steps: 20 }" })
            Assert.Contains(line + "\n", text);
        // One value per setting: every property of TrainingSpec, its optimiser and its evaluation, and no more.
        int settings = typeof(TrainingSpec).GetProperties().Count(p => p.PropertyType != typeof(OptimizerSpec) && p.PropertyType != typeof(EvalSpec))
                     + typeof(OptimizerSpec).GetProperties().Length + typeof(EvalSpec).GetProperties().Length;
        var values = SpecWriter.TrainingValues(training);
        Assert.Equal(settings, values.Count);
        // In the order of the format's key table, so the written YAML reads like a spec.
        var table = SpecYaml.Sections["training"].Select(k => k.Name).ToList();
        var topLevel = values.Select(v => v.Key.Split('.')[0]).Distinct().ToList();
        Assert.Equal(table, topLevel);
    }

    [Fact]
    public void The_architecture_hash_covers_the_sampling_keys_but_not_their_spelled_out_defaults()
    {
        string Hash(string scheduleLines) => Read(Minimal.Replace("  timesteps: 10", "  timesteps: 10" + scheduleLines)).ArchitectureHash;
        string plain = Read(Minimal).ArchitectureHash;

        Assert.Equal(plain, Hash("\n  objective: eps\n  clip_x0: false\n  dynamic_threshold: 0"));
        var changed = new[] { Hash("\n  objective: v"), Hash("\n  objective: x0"), Hash("\n  clip_x0: true"), Hash("\n  dynamic_threshold: 0.995"), Hash("\n  dynamic_threshold: 0.99") };
        Assert.DoesNotContain(plain, changed);
        Assert.Equal(changed.Length, changed.Distinct().Count());
        // Training settings are not architecture.
        Assert.Equal(plain, Read(Everything.Replace("  objective: v\n  clip_x0: true\n", "")).ArchitectureHash);
    }
}
