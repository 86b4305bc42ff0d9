using BenchmarkDotNet.Attributes;
using Ddpm.Diffusion;
using Ddpm.Models;
using Ddpm.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Benchmarks;

/// <summary>One training step (forward, Huber loss, backward, Adam) of the seed model.</summary>

// In process: the TorchSharp natives (and their GLIBCXX fix) are those of this build, and the
// allocator is chosen per process (DDPM_MALLOC=default for glibc as it is), so compare two runs.
[InProcess(true)]
[WarmupCount(2), IterationCount(7)]
public class TrainingBenchmarks
{
    private nn.Module<Tensor, Tensor, Tensor> model = null!;
    private Adam optimizer = null!;
    private Tensor images = null!;
    private readonly GaussianDiffusion diffusion = FashionMnistSchedule.Diffusion;
    private Generator generator = null!;

    [Params(128, 32)] public int Batch;
    [Params("generated", "hand-written")] public string Module = "generated";

    [GlobalSetup]
    public void Setup()
    {
        Allocator.Tune();
        manual_seed(0);
        model = Module == "generated" ? new FashionMnistUNet() : new HandWrittenUNet();
        optimizer = optim.Adam(model.parameters(), 1e-3);
        images = rand(Batch, 1, 28, 28) * 2 - 1;
        generator = new Generator(0);
    }

    [Benchmark]
    public double TrainStep()
    {
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
        var t = randint(0, FashionMnistSchedule.Timesteps, new long[] { Batch }, generator: generator);
        var noise = randn(images.shape, generator: generator);
        var loss = diffusion.Loss(model, images, t, noise, LossKind.Huber);
        loss.backward();
        optimizer.step();
        return loss.item<float>();
    }
}
