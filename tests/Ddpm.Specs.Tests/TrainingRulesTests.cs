using System.Globalization;

namespace Ddpm.Specs.Tests;

/// <summary>
/// One table of training rules (TrainingRules): the YAML reader reports a value outside it as DDPM106 at the value, and
/// settings made in code are refused by the same rule with the same words.
/// </summary>
public class TrainingRulesTests
{
    /// <summary>The first value outside each rule's range.</summary>
    static double JustOutside(NumberRange range) => range.Text switch
    {
        "> 0" => 0,
        ">= 0" => -1,
        "in [0, 1)" => 1,
        _ => int.Parse(range.Text[3..], CultureInfo.InvariantCulture) - 1, // ">= n"
    };

    static void Set(TrainingSpec t, string key, double value)
    {
        switch (key)
        {
            case "batch_size": t.BatchSize = (int)value; break;
            case "epochs": t.Epochs = (int)value; break;
            case "steps": t.Steps = (int)value; break;
            case "min_snr_gamma": t.MinSnrGamma = value; break;
            case "optimizer.lr": t.Optimizer.Lr = value; break;
            case "optimizer.beta1": t.Optimizer.Beta1 = value; break;
            case "optimizer.beta2": t.Optimizer.Beta2 = value; break;
            case "optimizer.weight_decay": t.Optimizer.WeightDecay = value; break;
            case "warmup_steps": t.WarmupSteps = (int)value; break;
            case "grad_clip": t.GradClip = value; break;
            case "ema_decay": t.EmaDecay = value; break;
            case "ema_power": t.EmaPower = value; break;
            case "ema_inv_gamma": t.EmaInvGamma = value; break;
            case "sample_every": t.SampleEvery = (int)value; break;
            case "checkpoint_every": t.CheckpointEvery = (int)value; break;
            case "eval.every": t.Eval.Every = (int)value; break;
            case "eval.samples": t.Eval.Samples = (int)value; break;
            case "eval.steps": t.Eval.Steps = (int)value; break;
            default: throw new ArgumentException("no setter for " + key);
        }
    }

    public static TheoryData<string> Keys() => new(TrainingRules.Numbers(new TrainingSpec()).Select(n => n.Key));

    [Theory]
    [MemberData(nameof(Keys))]
    public void The_reader_and_the_trainer_refuse_a_value_outside_the_rule_with_the_same_words(string key)
    {
        var range = TrainingRules.Numbers(new TrainingSpec()).Single(n => n.Key == key).Range;
        double bad = JustOutside(range);
        string written = bad.ToString("R", CultureInfo.InvariantCulture);
        string line = key.Contains('.') ? $"  {key.Split('.')[0]}: {{ {key.Split('.')[1]}: {written} }}" : $"  {key}: {written}";
        var document = SpecYaml.Read("schedule: { name: S, kind: linear }\ntraining:\n" + line + "\n");
        var error = Assert.Single(document.Errors);
        Assert.Equal(("DDPM106", "training." + key), (error.Id, error.Path));

        var settings = new TrainingSpec();
        Set(settings, key, bad);
        Assert.Equal(error.Message, Assert.Single(TrainingRules.Problems(settings)));
        Set(settings, key, range.Text == "in [0, 1)" ? 0.5 : bad + 1);
        Assert.Empty(TrainingRules.Problems(settings));
    }

    [Fact]
    public void Every_numeric_training_key_of_the_format_has_a_rule_and_non_finite_values_break_every_rule()
    {
        var numeric = SpecYaml.Sections["training"].Concat(SpecYaml.Sections["training.optimizer"].Select(k => Prefixed("optimizer", k)))
            .Concat(SpecYaml.Sections["training.eval"].Select(k => Prefixed("eval", k)))
            .Where(k => k.Type is SpecValueType.Integer or SpecValueType.Number && k.Name != "seed").Select(k => k.Name).Order();
        Assert.Equal(numeric, TrainingRules.Numbers(new TrainingSpec()).Select(n => n.Key).Order());
        foreach (var (key, _, range) in TrainingRules.Numbers(new TrainingSpec()))
            Assert.False(range.Allows(double.NaN) || range.Allows(double.PositiveInfinity), key);
    }

    [Fact]
    public void Settings_of_unknown_values_are_refused_by_name()
    {
        Assert.Empty(TrainingRules.Problems(new TrainingSpec()));
        Assert.Equal("'training.precision' has unknown value 'fp8'; use fp32, bf16, fp16",
                     Assert.Single(TrainingRules.Problems(new TrainingSpec { Precision = "fp8" })));
        Assert.Equal("'training.loss' has unknown value '7'; use huber, l2, l1",
                     Assert.Single(TrainingRules.Problems(new TrainingSpec { Loss = (LossKind)7 })));
    }

    static SpecKey Prefixed(string mapping, SpecKey key) => new(mapping + "." + key.Name, key.Type, key.Description);
}
