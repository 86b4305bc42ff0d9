using Ddpm.Diffusion;
using Ddpm.Schedules;
using Ddpm.Training;
using TorchSharp;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>The trainer's quality levers: EMA warm-ups, objectives with min-SNR weights, evaluation hooks, preferred weights.</summary>
[Collection(TrainingCollection.Name)]
public sealed class TrainerQualityTests
{
    [Fact]
    public void Power_warmup_follows_one_minus_one_plus_step_to_the_minus_power_capped_at_the_decay()
    {
        using var source = new ScalarTestModel(1f);
        using var average = new ScalarTestModel(0f);
        var ema = new ExponentialMovingAverage(source, average, 0.995, EmaWarmup.Power, power: 2.0 / 3.0, invGamma: 1.0);
        Assert.Equal(1 - Math.Pow(2, -2.0 / 3.0), ema.DecayAt(1), 12);         // 0.370
        Assert.Equal(1 - Math.Pow(469, -2.0 / 3.0), ema.DecayAt(468), 12);     // 0.9834 after one Fashion-MNIST epoch
        Assert.Equal(0.995, ema.DecayAt(100_000), 12);                           // capped
        var scaled = new ExponentialMovingAverage(source, average, 0.9999, EmaWarmup.Power, power: 0.75, invGamma: 10);
        Assert.Equal(1 - Math.Pow(1 + 50 / 10.0, -0.75), scaled.DecayAt(50), 12);
        var none = new ExponentialMovingAverage(source, average, 0.9, EmaWarmup.None);
        Assert.Equal(0.9, none.DecayAt(1), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialMovingAverage(source, average, 0.9, EmaWarmup.Power, power: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialMovingAverage(source, average, 0.9, EmaWarmup.Power, invGamma: double.NaN));
    }

    [Theory]
    [InlineData(Objective.X0, 0.0)]
    [InlineData(Objective.V, 5.0)]
    [InlineData(Objective.Eps, 5.0)]
    public void Every_objective_learns_the_bars_with_and_without_min_snr(Objective objective, double gamma)
    {
        var spec = Spec(steps: 30);
        spec.MinSnrGamma = gamma;
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Linear, Timesteps), new DiffusionOptions(objective));
        var losses = new List<double>();
        using (var trainer = UNetTrainer(spec, losses, diffusion: diffusion))
        {
            trainer.Train();
            trainer.Model.Dispose();
        }
        double first = losses.Take(10).Average(), last = losses.Skip(20).Average();
        Assert.True(last < 0.8 * first, $"{objective}, gamma {gamma}: loss should fall, {first:F4} -> {last:F4}");
    }

    [Fact]
    public void Evaluation_fires_on_its_cadence_after_the_checkpoint_and_never_changes_the_loss_curve()
    {
        var plain = Losses(Spec(steps: 7));

        var spec = Spec(steps: 7);
        spec.Eval.Every = 3;
        spec.CheckpointEvery = 3;
        var events = new List<string>();
        var losses = new List<double>();
        var model = new SmallTestUNet(7);
        using (var trainer = new Trainer(model, MakeDiffusion(), Trainer.CreateLoader(Bars(), spec), spec, () => new SmallTestUNet(7),
            new TrainingCallbacks
            {
                Progress = new SyncProgress<TrainingProgress>(p => losses.Add(p.Loss)),
                CheckpointDue = r => events.Add($"checkpoint {r.Step}"),
                EvaluationDue = r =>
                {
                    events.Add($"evaluate {r.Step}{(r.IsFinal ? " final" : "")}");
                    // What an evaluation does: sample both weights with its own generator, in eval mode.
                    foreach (var scored in new[] { r.Trainer.EmaModel!, r.Trainer.Model })
                    {
                        scored.eval();
                        using var generator = new Generator(123);
                        using var images = r.Trainer.Diffusion.Sample(scored, new long[] { 4, 1, 8, 8 }, SamplerKind.Ddim, 3, generator: generator);
                        scored.train();
                    }
                    r.Trainer.PreferWeights(SamplingWeights.Raw, $"test at step {r.Step}");
                },
            }))
        {
            trainer.Train();
            Assert.Same(trainer.Model, trainer.SamplingModel); // raw preferred
            Assert.Equal(SamplingWeights.Raw, trainer.PreferredWeights);
        }
        model.Dispose();
        Assert.Equal(new[] { "checkpoint 3", "evaluate 3", "checkpoint 6", "evaluate 6", "checkpoint 7", "evaluate 7 final" }, events);
        Assert.Equal(plain, losses); // bit for bit
    }

    [Fact]
    public void Preferred_weights_survive_a_checkpoint_and_version_1_2_and_3_files_still_load()
    {
        using var dir = new TempDir();
        var spec = Spec(steps: 2);
        var losses = new List<double>();
        using var trainer = UNetTrainer(spec, losses);
        trainer.Train();
        trainer.PreferWeights(SamplingWeights.Raw, "FID 10 (raw) vs 12 (EMA) at step 2");
        string path = dir.File("last.ckpt");
        trainer.SaveCheckpoint(path);
        using (var loaded = Checkpoint.Load(path))
        {
            Assert.Equal(SamplingWeights.Raw, loaded.PreferredWeights);
            Assert.Equal("FID 10 (raw) vs 12 (EMA) at step 2", loaded.PreferenceReason);
            using var fresh = UNetTrainer(spec, new List<double>());
            fresh.Restore(loaded);
            Assert.Equal(SamplingWeights.Raw, fresh.PreferredWeights);
            fresh.Model.Dispose();
        }

        // Older files are today's payload without the fields added since: version 3 lacks the class names (an int32 count,
        // 0 here), version 2 also the loss scaler (double, int32), version 1 also the preferred weights (enum byte, 7-bit
        // length prefix, UTF-8 text).
        byte[] current = File.ReadAllBytes(path);
        int header = 8 + 4 + 8;
        long length = BitConverter.ToInt64(current, 12);
        int classTail = sizeof(int);
        int scalerTail = classTail + sizeof(double) + sizeof(int);
        int preferenceTail = 1 + 1 + "FID 10 (raw) vs 12 (EMA) at step 2".Length;
        string Older(int version, int tail)
        {
            byte[] payload = current.AsSpan(header, (int)length - tail).ToArray();
            using var stream = new MemoryStream();
            stream.Write("DDPMCKPT"u8);
            stream.Write(BitConverter.GetBytes(version));
            stream.Write(BitConverter.GetBytes((long)payload.Length));
            stream.Write(payload);
            stream.Write(System.Security.Cryptography.SHA256.HashData(payload));
            string file = dir.File($"v{version}.ckpt");
            File.WriteAllBytes(file, stream.ToArray());
            return file;
        }
        using (var v3 = Checkpoint.Load(Older(3, classTail)))
        {
            Assert.Equal(SamplingWeights.Raw, v3.PreferredWeights);
            Assert.Empty(v3.ClassNames);
        }
        using (var v2 = Checkpoint.Load(Older(2, scalerTail)))
        {
            Assert.Equal(SamplingWeights.Raw, v2.PreferredWeights);
            Assert.Equal(0, v2.LossScale);
        }
        using var old = Checkpoint.Load(Older(1, scalerTail + preferenceTail));
        Assert.Equal(SamplingWeights.Unknown, old.PreferredWeights);
        Assert.Equal(2, old.Step);
        trainer.Model.Dispose();
    }
}
