using Xunit.Abstractions;
using Ddpm.Native;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

[Collection(TrainingCollection.Name)] // measures the process's RSS: runs alone
public sealed class SamplingMemoryTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Native_memory_does_not_grow_over_repeated_sampling()
    {
        // Each reverse step runs in a dispose scope and each loop frees its x_t; after one warm-up
        // loop, ten more loops of 100 steps (1,000 model calls) must leave no tensor alive and must
        // not add to the resident size. A leaked [16, 1, 8, 8] x_t per step alone would add 4 MB.
        Skip.IfNot(File.Exists("/proc/self/status"), "no /proc/self/status on this OS: the resident size cannot be read");
        using var model = new SmallTestUNet(7);
        model.eval();
        var diffusion = MakeDiffusion();
        var shape = new long[] { 16, 1, 8, 8 };
        void Loop(ulong seed)
        {
            using var generator = new Generator(seed);
            diffusion.PSampleLoop(model, shape, generator).Dispose();
            // TorchSharp 0.107 turns numbers into Scalars implicitly (x.add(y) passes alpha = 1) and
            // leaves them to finalizers; a long run's collections free them, so collect as one would.
            // Without this, freed-late Scalars scattered through the heap keep tens of MiB resident.
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Loop(0);
        long liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long before = Allocator.ResidentMemory().Rss;
        for (ulong seed = 1; seed <= 10; seed++) Loop(seed);
        long after = Allocator.ResidentMemory().Rss;
        output.WriteLine($"RSS after the warm-up loop: {before >> 20} MiB, after 10 more: {after >> 20} MiB");
        Assert.Equal(liveBefore, DisposeScopeManager.Statistics.ThreadTotalLiveCount); // every tensor disposed, none left to the GC
        Assert.True(after - before < 8L << 20, $"RSS grew by {(after - before) / 1048576.0:F1} MiB over 10 sampling loops.");
    }
}
