using System.Runtime.InteropServices;

namespace Ddpm.Runtime.Tests;

/// <summary>The build step of build/NativeCompat.cs that lets TorchSharp load on GCC 12 hosts.</summary>
public class NativeCompatTests
{
    private static string OutputLibrary => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    /// <summary>The package's own copy, found from the NuGet cache the build restored from.</summary>
    private static string CachedLibrary()
    {
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(cache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(path) ? path : throw new SkipException($"TorchSharp's linux-x64 library is not in the NuGet cache ({path})");
    }

    [SkippableFact]
    public void The_output_copy_is_patched_and_the_package_cache_is_not()
    {
        Skip.IfNot(RuntimeInformation.IsOSPlatform(OSPlatform.Linux), "the build patches libLibTorchSharp.so on Linux only");
        string cached = CachedLibrary();
        byte[] original = File.ReadAllBytes(cached);
        byte[] copy = (byte[])original.Clone();
        string first = PatchTorchSharpNativeCompat.MarkVersionWeak(copy, out bool changed);
        Assert.True(changed, first);
        Assert.Equal("marked GLIBCXX_3.4.32 weak (host libstdc++ lacks it)", first);
        Assert.Equal(1, original.Zip(copy).Count(p => p.First != p.Second)); // one flag byte, nothing else

        // Idempotent: a second pass finds nothing to do.
        Assert.Equal("GLIBCXX_3.4.32 already weak, nothing to do", PatchTorchSharpNativeCompat.MarkVersionWeak(copy, out bool again));
        Assert.False(again);

        // The cache still holds the package as shipped.
        PatchTorchSharpNativeCompat.MarkVersionWeak((byte[])File.ReadAllBytes(cached).Clone(), out bool cacheWouldChange);
        Assert.True(cacheWouldChange);

        // The build output is either patched or, on a host with GCC 13's libstdc++, identical to the package.
        byte[] output = File.ReadAllBytes(OutputLibrary);
        Assert.True(output.SequenceEqual(copy) || output.SequenceEqual(original));
    }

    [Fact]
    public void Files_that_are_not_64_bit_ELF_are_rejected()
    {
        Assert.Throws<InvalidDataException>(() => PatchTorchSharpNativeCompat.MarkVersionWeak(new byte[100], out _));
    }
}
