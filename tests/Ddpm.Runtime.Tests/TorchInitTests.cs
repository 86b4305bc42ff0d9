using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests;

public class TorchInitTests
{
    [Fact]
    public void TorchSharp_initialises_and_computes()
    {
        using var a = tensor(new float[] { 1, 2, 3 });
        using var b = (a * 2).sum();
        Assert.Equal(12f, b.item<float>());
    }
}
