using Ddpm.Native;
using SkiaSharp;

namespace Ddpm.Cli.Tests;

/// <summary>`ddpm sample --engine`: ONNX Runtime runs the checkpoint's network with TorchSharp's noise, so a seed draws the same images.</summary>
[Collection("cli")]
public sealed class SamplingEngineTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-engine-").FullName;
    private readonly string? savedCache = Environment.GetEnvironmentVariable(KernelCache.EnvironmentVariable);

    public SamplingEngineTests() => Environment.SetEnvironmentVariable(KernelCache.EnvironmentVariable, Path.Combine(root, "cache"));

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(KernelCache.EnvironmentVariable, savedCache);
        Directory.Delete(root, recursive: true);
    }

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    private string Checkpoint()
    {
        string run = Path.Combine(root, "run");
        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "20", "--final-samples", "0", "--eval-every", "0");
        Assert.True(code == 0, error + output);
        return Path.Combine(run, "checkpoints", "last.ckpt");
    }

    private static byte[] Pixels(string png)
    {
        using var bitmap = SKBitmap.Decode(png);
        var pixels = new byte[bitmap.Width * bitmap.Height];
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
                pixels[y * bitmap.Width + x] = bitmap.GetPixel(x, y).Red;
        return pixels;
    }

    [Theory]
    [InlineData("dpmpp-2m")]
    [InlineData("dpmpp-2m-sde")] // fresh noise at every step: the ONNX path replays TorchSharp's generator draw for draw
    [InlineData("ddpm")]
    public void Both_engines_draw_the_same_images_for_a_seed(string sampler)
    {
        string checkpoint = Checkpoint();
        var images = new Dictionary<string, byte[]>();
        foreach (string engine in new[] { "torch", "onnx" })
        {
            string png = Path.Combine(root, $"{engine}.png");
            var (code, output, error) = Ddpm("sample", checkpoint, "--count", "6", "--sampler", sampler, "--steps", "10", "--seed", "3",
                                             "--engine", engine, "--out", png);
            Assert.True(code == 0, error + output);
            Assert.Contains(engine == "onnx" ? "ONNX Runtime (--engine onnx)" : "TorchSharp (--engine torch)", output);
            images[engine] = Pixels(png);
        }
        Assert.Equal(images["torch"].Length, images["onnx"].Length);
        // Float32 differences of two engines (within 1e-4 of each other in the ONNX tests) move a pixel by at most one
        // level of 255 where a value sits on a rounding edge.
        int differing = images["torch"].Zip(images["onnx"]).Count(p => p.First != p.Second);
        int largest = images["torch"].Zip(images["onnx"]).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(largest <= 1, $"largest pixel difference {largest}");
        Assert.True(differing <= images["torch"].Length / 100, $"{differing} of {images["torch"].Length} pixels differ");
        // A different seed draws different images: the comparison above is not between two blank grids.
        string other = Path.Combine(root, "other.png");
        Assert.Equal(0, Ddpm("sample", checkpoint, "--count", "6", "--sampler", sampler, "--steps", "10", "--seed", "4", "--engine", "onnx", "--out", other).Code);
        Assert.True(Pixels(other).Zip(images["onnx"]).Count(p => p.First != p.Second) > images["onnx"].Length / 10);
    }

    [Fact]
    public void Auto_times_both_engines_once_and_says_which_it_took()
    {
        string checkpoint = Checkpoint();
        var (code, output, error) = Ddpm("sample", checkpoint, "--count", "4", "--sampler", "ddim", "--steps", "4", "--out", Path.Combine(root, "a.png"));
        Assert.True(code == 0, error + output);
        Assert.Matches(@"\(auto: one call on 4 images: \d+ ms TorchSharp, \d+ ms ONNX Runtime, measured now\)", output);
        var (again, secondOutput, _) = Ddpm("sample", checkpoint, "--count", "4", "--sampler", "ddim", "--steps", "4", "--out", Path.Combine(root, "b.png"));
        Assert.Equal(0, again);
        Assert.Contains("measured once on this machine", secondOutput);
        Assert.Equal(Pixels(Path.Combine(root, "a.png")), Pixels(Path.Combine(root, "b.png"))); // the same engine, the same images
    }

    [Theory]
    [InlineData("--precision", "bf16")]
    [InlineData("--x0-limit", "clip")]
    [InlineData("--frames")]
    public void ONNX_Runtime_refuses_what_only_TorchSharp_can_do(params string[] option)
    {
        string checkpoint = Checkpoint();
        string png = Path.Combine(root, "x.png");
        var (code, _, error) = Ddpm(["sample", checkpoint, "--count", "2", "--engine", "onnx", "--out", png, .. option]);
        Assert.Equal(2, code);
        Assert.StartsWith($"ddpm: --engine onnx samples in float32 on the CPU with the model's declared x_0 limit: {option[0]}", error);
        Assert.False(File.Exists(png));
        // auto takes TorchSharp for them and says why.
        var (autoCode, output, autoError) = Ddpm(["sample", checkpoint, "--count", "2", "--sampler", "ddim", "--steps", "2", "--out", png, .. option]);
        Assert.True(autoCode == 0, autoError);
        Assert.Contains($"TorchSharp ({option[0]}", output);
    }
}
