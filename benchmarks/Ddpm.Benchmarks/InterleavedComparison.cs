using System.Diagnostics;
using Ddpm.Models;
using Ddpm.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Benchmarks;

/// <summary>
/// The generated U-Net against the hand-written one, one training step of each in turn, so that
/// both see the same machine load and heap state; BenchmarkDotNet in process runs one after the other.
/// </summary>
public static class InterleavedComparison
{
    public static void Run(int batch, int rounds)
    {
        Console.WriteLine($"allocator: {Allocator.Tune()}; batch {batch}; {rounds} rounds after 2 warm-up rounds");
        manual_seed(0);
        var contenders = new (string Name, nn.Module<Tensor, Tensor, Tensor> Model, Adam Optimizer, List<double> Times)[]
        {
            ("generated", new FashionMnistUNet(), null!, new List<double>()),
            ("hand-written", new HandWrittenUNet(), null!, new List<double>()),
        };
        for (int i = 0; i < contenders.Length; i++)
            contenders[i].Optimizer = optim.Adam(contenders[i].Model.parameters(), 1e-3);
        using var images = rand(batch, 1, 28, 28) * 2 - 1;
        using var generator = new Generator(0);
        var watch = new Stopwatch();
        for (int round = 0; round < rounds + 2; round++)
            foreach (var (_, model, optimizer, times) in contenders)
            {
                watch.Restart();
                using (var scope = NewDisposeScope())
                {
                    optimizer.zero_grad();
                    var t = randint(0, FashionMnistSchedule.Timesteps, new long[] { batch }, generator: generator);
                    var noise = randn(images.shape, generator: generator);
                    var loss = FashionMnistSchedule.Diffusion.Loss(model, images, t, noise, LossKind.Huber);
                    loss.backward();
                    optimizer.step();
                }
                if (round >= 2) times.Add(watch.Elapsed.TotalMilliseconds);
            }
        double Median(List<double> v) { var s = v.Order().ToList(); return (s[(s.Count - 1) / 2] + s[s.Count / 2]) / 2; }
        foreach (var (name, _, _, times) in contenders)
            Console.WriteLine($"{name,-13} median {Median(times):F0} ms, min {times.Min():F0} ms");
        Console.WriteLine($"generated / hand-written (medians): {Median(contenders[0].Times) / Median(contenders[1].Times):F3}");
    }
}
