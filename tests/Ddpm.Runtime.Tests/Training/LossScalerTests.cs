using Ddpm.Training;
using TorchSharp;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>float16 training: the loss scaler's state machine, unscaling, and the trainer skipping overflowed steps.</summary>
[Collection(TrainingCollection.Name)]
public sealed class LossScalerTests
{
    [Fact]
    public void The_scale_halves_on_an_overflow_and_doubles_after_the_growth_interval()
    {
        var scaler = new LossScaler(initialScale: 1024, growthInterval: 3);
        Assert.True(scaler.Update(gradientsFinite: true));
        Assert.True(scaler.Update(true));
        Assert.Equal((1024.0, 2), (scaler.Scale, scaler.GoodSteps));
        Assert.True(scaler.Update(true)); // third good step in a row: grow
        Assert.Equal((2048.0, 0), (scaler.Scale, scaler.GoodSteps));
        Assert.True(scaler.Update(true));
        Assert.False(scaler.Update(false)); // overflow: skip, halve, restart the count
        Assert.Equal((1024.0, 0), (scaler.Scale, scaler.GoodSteps));
        Assert.False(scaler.Update(false));
        Assert.Equal(512.0, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.True(scaler.Update(true));
        Assert.True(scaler.Update(true));
        Assert.Equal((1024.0, 0), (scaler.Scale, scaler.GoodSteps));
    }

    [Fact]
    public void Unscaling_restores_known_gradients_and_an_injected_inf_marks_the_step_for_skipping()
    {
        var scaler = new LossScaler(initialScale: 256);
        using var loss = tensor(0.75f);
        using var scaledLoss = scaler.ScaleLoss(loss);
        Assert.Equal(192f, scaledLoss.item<float>());

        using var a = tensor(new[] { 256f, -512f });
        using var b = tensor(new[] { 64f, float.PositiveInfinity }); // one overflowed element
        scaler.Unscale(new[] { a, null, b });
        Assert.Equal(new[] { 1f, -2f }, a.data<float>().ToArray());
        Assert.Equal(new[] { 0.25f, float.PositiveInfinity }, b.data<float>().ToArray());
        using var norm = stack(new[] { a.norm(p: 2f), b.norm(p: 2f) }).norm(p: 2f);
        bool finite = float.IsFinite(norm.item<float>());
        Assert.False(finite);
        Assert.False(scaler.Update(finite));
        Assert.Equal(128.0, scaler.Scale);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NaN)]
    public void A_bad_scale_is_refused(double scale)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LossScaler(initialScale: scale));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LossScaler().Restore(scale, 0));
    }

    [Fact]
    public void Fp16_training_skips_overflowed_steps_without_touching_the_weights_then_trains()
    {
        var spec = Spec(steps: 40);
        spec.Precision = "fp16";
        var losses = new List<double>();
        using var trainer = UNetTrainer(spec, losses);
        Assert.NotNull(trainer.Scaler);
        Assert.Equal(LossScaler.DefaultInitialScale, trainer.Scaler!.Scale);
        // A scale far too large: the float16 gradients overflow to inf until it has halved enough.
        trainer.Scaler.Restore(Math.Pow(2, 40), 0);
        var before = trainer.Model.parameters().Select(p => p.detach().clone()).ToArray();
        var emaBefore = trainer.EmaModel!.parameters().Select(p => p.detach().clone()).ToArray();

        trainer.TrainStep();
        Assert.Equal(1, trainer.SkippedSteps);
        Assert.Equal(Math.Pow(2, 39), trainer.Scaler.Scale);
        Assert.True(double.IsFinite(losses[0]) && losses[0] > 0, $"the loss of a skipped step is still reported: {losses[0]}");
        Assert.All(trainer.Model.parameters().Zip(before), pair => Assert.True(Identical(pair.First, pair.Second), "a skipped step changed a weight"));
        Assert.All(trainer.EmaModel.parameters().Zip(emaBefore), pair => Assert.True(Identical(pair.First, pair.Second), "a skipped step changed the EMA"));

        while (trainer.SkippedSteps == trainer.Step && trainer.Step < 30) trainer.TrainStep();
        long skipped = trainer.SkippedSteps;
        Assert.InRange(skipped, 2, 29); // it recovered within the run
        Assert.Equal(Math.Pow(2, 40 - skipped), trainer.Scaler.Scale);
        Assert.Contains(trainer.Model.parameters().Zip(before), pair => !Identical(pair.First, pair.Second));
        Assert.All(trainer.Model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype)); // float32 master weights

        trainer.Train(); // and the loss falls once steps are taken
        var taken = losses.Skip((int)skipped).ToList();
        Assert.True(taken.Skip(taken.Count - 5).Average() < 0.8 * taken.Take(5).Average(), string.Join(", ", taken));
        foreach (var t in before.Concat(emaBefore)) t.Dispose();
        trainer.Model.Dispose();
    }

    [Fact]
    public void An_fp16_run_resumes_exactly_with_its_loss_scale()
    {
        var spec = Spec(steps: 6);
        spec.Precision = "fp16";
        var straight = new List<double>();
        using (var trainer = UNetTrainer(spec, straight))
        {
            trainer.Scaler!.Restore(Math.Pow(2, 30), 0); // a few skipped steps first, so the scale differs from the initial one
            trainer.Train();
            trainer.Model.Dispose();
        }
        var resumed = new List<double>();
        using var checkpoint = new TempDir();
        double scaleAtCheckpoint;
        using (var first = UNetTrainer(spec, resumed))
        {
            first.Scaler!.Restore(Math.Pow(2, 30), 0);
            first.TrainUntil(3);
            scaleAtCheckpoint = first.Scaler.Scale;
            first.SaveCheckpoint(checkpoint.File("last.ckpt"));
            first.Model.Dispose();
        }
        Assert.NotEqual(Math.Pow(2, 30), scaleAtCheckpoint);
        using (var second = UNetTrainer(spec, resumed))
        {
            second.LoadCheckpoint(checkpoint.File("last.ckpt"));
            Assert.Equal(scaleAtCheckpoint, second.Scaler!.Scale);
            second.Train();
            second.Model.Dispose();
        }
        Assert.Equal(straight, resumed);
    }
}
