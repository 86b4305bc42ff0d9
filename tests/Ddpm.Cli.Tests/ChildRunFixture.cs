using Ddpm.Data;
using Ddpm.Training;

namespace Ddpm.Cli.Tests;

/// <summary>What the tests that run the built ddpm as a child process share: a small Fashion-MNIST cache and the seed spec.</summary>
internal static class ChildRunFixture
{
    /// <summary>32 random 28x28 images with labels 0-9, as a Fashion-MNIST cache under <paramref name="dataRoot"/> (the child's DDPM_DATA).</summary>
    public static void WriteFashionMnist(string dataRoot)
    {
        var pixels = new byte[32 * 28 * 28];
        new Random(7).NextBytes(pixels);
        var images = new ImageSet(pixels, 32, 1, 28, 28);
        var labels = Enumerable.Range(0, 32).Select(i => (byte)(i % 10)).ToArray();
        FashionMnist.WriteCache(FashionMnist.CacheFolder(dataRoot), new FashionMnistSplit(images, labels, images, labels));
    }

    /// <summary>The repository's specs/fashion-mnist.yaml.</summary>
    public static string SeedSpec([System.Runtime.CompilerServices.CallerFilePath] string testFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(testFile)!, "..", "..", "specs", "fashion-mnist.yaml"));
}
