using BenchmarkDotNet.Attributes;
using Ddpm.Models;
using Ddpm.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Benchmarks;

/// <summary>Reverse-process sampling of 64 images with the seed model and schedule.</summary>

// In process: the TorchSharp natives (and their GLIBCXX fix) are those of this build, and the
// allocator is chosen per process (DDPM_MALLOC=default for glibc as it is), so compare two runs.
[InProcess(true)]
[WarmupCount(1), IterationCount(3)]
public class SamplingBenchmarks
{
    private FashionMnistUNet model = null!;
    private Tensor x = null!;


    [GlobalSetup]
    public void Setup()
    {
        Allocator.Tune();
        manual_seed(0);
        model = new FashionMnistUNet();
        model.eval();
        x = randn(FashionMnistUNet.BatchShape(64));
    }

    [Benchmark]
    public void OneDdpmStep()
    {
        using var _ = no_grad();
        using var generator = new Generator(1);
        FashionMnistSchedule.Diffusion.PSample(model, x, 150, generator).Dispose();
    }

    [Benchmark]
    public void FullDdpm300Steps()
    {
        using var generator = new Generator(1);
        FashionMnistSchedule.Diffusion.PSampleLoop(model, FashionMnistUNet.BatchShape(64), generator).Dispose();
    }

    [Benchmark]
    public void Ddim50Steps()
    {
        using var generator = new Generator(1);
        FashionMnistSchedule.Diffusion.DdimSample(model, FashionMnistUNet.BatchShape(64), steps: 50, eta: 0, generator).Dispose();
    }
}
