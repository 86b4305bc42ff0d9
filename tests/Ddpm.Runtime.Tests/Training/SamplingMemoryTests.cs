using Xunit.Abstractions;
using Ddpm.Native;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

[Collection(TrainingCollection.Name)] // measures the process's RSS: runs alone
public sealed class SamplingMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void Native_memory_does_not_grow_over_repeated_sampling()
    {
        // Each reverse step runs in a dispose scope and each loop frees its x_t; after one warm-up
        // loop, ten more loops of 100 steps (1,000 model calls) must not add to the resident size.
        // A leaked [16, 1, 8, 8] x_t per step alone would add 4 MB; a leaked activation set far more.
        if (!File.Exists("/proc/self/status")) return;
        using var model = new SmallTestUNet(7);
        model.eval();
        var diffusion = MakeDiffusion();
        var shape = new long[] { 16, 1, 8, 8 };
        void Loop(ulong seed)
        {
            using var generator = new Generator(seed);
            diffusion.PSampleLoop(model, shape, generator).Dispose();
        }
        Loop(0);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = Allocator.ResidentMemory().Rss;
        for (ulong seed = 1; seed <= 10; seed++) Loop(seed);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long after = Allocator.ResidentMemory().Rss;
        output.WriteLine($"RSS after the warm-up loop: {before >> 20} MiB, after 10 more: {after >> 20} MiB");
        Assert.True(after - before < 8L << 20, $"RSS grew by {(after - before) / 1048576.0:F1} MiB over 10 sampling loops.");
    }
}
