using Ddpm.Diffusion;
using Ddpm.Schedules;
using Ddpm.Training;
using TorchSharp;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>
/// Training steps and samplers make every tensor on the device of the model, never on an implicit one. The probe: torch's
/// default device (the one a factory such as randn, zeros, full, arange or tensor uses when no device is named) is switched to
/// meta while the model stays on the CPU. A tensor made without its device is then a meta tensor, which holds no data:
/// mixing it with a CPU tensor, reading it (item, cpu) or copying it into a CPU tensor throws, and ops that accept it
/// (gather) pass the meta-ness on until one of those does. So a step or a sampler that makes and uses such a tensor fails here.
/// Not covered: a tensor made and never used; a device named explicitly but wrongly (CPU hard-coded where the model's
/// device belongs: the model is on the CPU here, so that looks right; CUDA runs would catch it, none run here); module
/// construction (Trainer's constructor runs with the usual default); checkpoint writing and loading.
/// The default device is process-wide, so these tests run in the serial training collection.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class DevicePurityTests
{
    private static readonly Device Meta = new(DeviceType.META);

    private static T WithImplicitDeviceMeta<T>(Func<T> action)
    {
        var previous = get_default_device();
        set_default_device(Meta);
        try { return action(); }
        finally { set_default_device(previous); }
    }

    [Fact]
    public void The_probe_fails_a_step_that_makes_a_tensor_without_naming_its_device()
    {
        using var model = new SmallTestUNet(7);
        var diffusion = MakeDiffusion();
        using var x0 = zeros(new long[] { 2, 1, 8, 8 }, device: CPU);
        using var noise = ones(new long[] { 2, 1, 8, 8 }, device: CPU);
        // As the trainer drew timesteps before it was device-generic: randint without a device.
        var e = Record.Exception(() => WithImplicitDeviceMeta(() =>
        {
            using var t = randint(0, diffusion.Timesteps, new long[] { 2 }, dtype: ScalarType.Int64);
            using var loss = diffusion.Loss(model, x0, t, noise);
            return loss.item<float>();
        }));
        Assert.NotNull(e);
        // And the same work with the device named passes the probe.
        float value = WithImplicitDeviceMeta(() =>
        {
            using var t = randint(0, diffusion.Timesteps, new long[] { 2 }, dtype: ScalarType.Int64, device: CPU);
            using var loss = diffusion.Loss(model, x0, t, noise);
            return loss.item<float>();
        });
        Assert.True(float.IsFinite(value) && value > 0, $"loss {value}");
    }

    [Theory]
    [InlineData("fp32", Objective.Eps, 0.0)]
    [InlineData("fp32", Objective.V, 5.0)]
    [InlineData("bf16", Objective.X0, 5.0)]
    [InlineData("fp16", Objective.Eps, 0.0)]
    public void Training_steps_make_no_tensor_on_the_implicit_device(string precision, Objective objective, double minSnrGamma)
    {
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Linear, 20), new DiffusionOptions { Objective = objective });
        List<double> Run(bool probe)
        {
            var spec = Spec(steps: 3);
            spec.Precision = precision;
            spec.MinSnrGamma = minSnrGamma;
            var losses = new List<double>();
            using var trainer = UNetTrainer(spec, losses, diffusion: diffusion);
            if (probe) WithImplicitDeviceMeta(() => { trainer.Train(); return 0; });
            else trainer.Train();
            trainer.Model.Dispose();
            return losses;
        }
        var expected = Run(probe: false);
        var actual = Run(probe: true);
        Assert.Equal(3, actual.Count);
        Assert.All(actual, loss => Assert.True(double.IsFinite(loss) && loss > 0, $"loss {loss}"));
        Assert.Equal(expected, actual); // the probe changed nothing: the same work ran, bit for bit
    }

    [Theory]
    [InlineData(SamplerKind.Ddpm, 0.0, false)]
    [InlineData(SamplerKind.Ddim, 1.0, true)]
    [InlineData(SamplerKind.DpmSolver2M, 0.0, false)]
    [InlineData(SamplerKind.DpmSolver2MSde, 0.0, true)]
    public void Samplers_make_no_tensor_on_the_implicit_device(SamplerKind sampler, double eta, bool dynamicThreshold)
    {
        using var model = new SmallTestUNet(7);
        model.eval();
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Linear, 20),
            dynamicThreshold ? new DiffusionOptions { DynamicThreshold = 0.99 } : new DiffusionOptions { ClipX0 = true });
        var shape = new long[] { 3, 1, 8, 8 };
        Tensor Draw()
        {
            using var generator = new Generator(5);
            var frames = new List<Tensor>();
            var x = diffusion.Sample(model, shape, sampler, 6, eta, generator, frames);
            foreach (var frame in frames) frame.Dispose();
            return x;
        }
        using var expected = Draw();
        using var actual = WithImplicitDeviceMeta(Draw);
        Assert.Equal(DeviceType.CPU, actual.device_type);
        Assert.True(expected.std().item<float>() > 0.01, "the samples should not be constant");
        Assert.True(Identical(expected, actual), "the probe should not change the samples");
    }

    [Fact]
    public void A_model_spread_over_two_devices_is_refused()
    {
        using var model = nn.Sequential(("a", nn.Linear(2, 2)), ("b", nn.Linear(2, 2)));
        model.named_children().Last().module.to(Meta);
        var e = Assert.Throws<ArgumentException>(() => Devices.Of(model));
        Assert.Contains("move the whole model to one device", e.Message);
        using var cpuModel = nn.Linear(2, 2);
        Assert.Equal(DeviceType.CPU, Devices.Of(cpuModel).type);
    }
}

/// <summary>The trainer's on-device gradient clipping is libtorch's clip_grad_norm_ without the host read.</summary>
[Collection(TrainingCollection.Name)]
public sealed class GradientClippingTests
{
    [Theory]
    [InlineData(0.05)]
    [InlineData(0.0)]
    public void Clipping_on_the_device_matches_libtorch_bit_for_bit(double maxNorm)
    {
        using var a = new SmallTestUNet(7);
        using var b = new SmallTestUNet(7);
        using var generator = new Generator(3);
        using var x = randn(new long[] { 4, 1, 8, 8 }, device: CPU, generator: generator);
        using var t = tensor(new long[] { 1, 20, 50, 99 }, device: CPU);
        foreach (var model in new[] { a, b })
            using (var loss = model.forward(x, t).square().mean())
                loss.backward();
        var pa = a.parameters().ToArray();
        var pb = b.parameters().ToArray();
        Assert.All(pa.Zip(pb), p => Assert.True(Identical(p.First.grad!, p.Second.grad!)));

        double expected = nn.utils.clip_grad_norm_(pa, maxNorm > 0 ? maxNorm : double.PositiveInfinity);
        using var norm = Trainer.ClipGradients(pb, maxNorm);
        Assert.Equal(expected, norm.item<float>());
        Assert.True(expected > 0.05, $"the norm {expected} should exceed the clip so clipping is exercised");
        Assert.All(pa.Zip(pb), p => Assert.True(Identical(p.First.grad!, p.Second.grad!), "gradients differ after clipping"));
        if (maxNorm > 0)
        {
            using var clipped = stack(pb.Select(p => p.grad!.norm(p: 2f)).ToArray()).norm(p: 2f);
            Assert.Equal(maxNorm, clipped.item<float>(), 1e-6);
        }
    }
}
