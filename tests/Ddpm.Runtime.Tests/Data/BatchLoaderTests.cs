using Ddpm.Data;
using Ddpm.Runtime.Tests.Training;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Data;

public class BatchLoaderTests
{
    [Fact]
    public void Every_yielded_batch_keeps_its_values_while_the_prefetch_refills_its_buffers()
    {
        // 64 images at batch 4: 16 batches, far more than the prefetch's recycled buffers, all held at once.
        var loader = new BatchLoader(TrainingFixtures.Bars(), 4, randomFlip: true, seed: 3);
        Assert.Equal(16, loader.BatchesPerEpoch);
        var held = new List<Tensor>();
        try
        {
            held.AddRange(loader.Batches(epoch: 1, startBatch: 2));
            Assert.Equal(14, held.Count);
            for (int i = 0; i < held.Count; i++)
            {
                Assert.Equal(new long[] { 4, 1, 8, 8 }, held[i].shape);
                Assert.Equal(loader.MakeBatch(1, i + 2), held[i].data<float>().ToArray());
            }
            // Consecutive batches differ, so a tensor that still read a recycled buffer would fail the check above.
            Assert.NotEqual(held[0].data<float>().ToArray(), held[1].data<float>().ToArray());
        }
        finally
        {
            held.ForEach(t => t.Dispose());
        }
    }
}
