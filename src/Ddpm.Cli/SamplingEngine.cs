using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Ddpm.Interop;
using Ddpm.Diffusion;
using Ddpm.Native;
using Ddpm.Onnx;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>
/// Which engine runs a checkpoint's network while `ddpm sample` draws on the CPU: TorchSharp (libtorch), or ONNX Runtime
/// through the graph `ddpm export --format onnx` writes, exported once per checkpoint and weights into the cache
/// (<c>~/.cache/ddpm/onnx</c>). <c>auto</c> times one model call of each at the sampling batch the first time a model is
/// sampled on a machine, keeps the result in the kernel cache and picks the faster. The ONNX path replays TorchSharp's
/// generator (<see cref="TorchNoise"/>), so a seed draws the same images on both, within the engines' float32 differences.
/// </summary>
internal static class SamplingEngine
{
    public const string Torch = "torch", Onnx = "onnx", Auto = "auto";

    /// <summary>ONNX Runtime must be at least this much faster to be chosen by auto.</summary>
    public const double RequiredSpeedup = 1.05;

    /// <summary>The engine to use and why, as one line for the user.</summary>
    public sealed record Choice(string Engine, string Reason);

    /// <summary>
    /// Resolves <c>--engine</c>: ONNX Runtime runs only float32 sampling on the CPU, with the x_0 limit the model declares and
    /// no animation (an explicit <c>onnx</c> with any of those is a usage error; <c>auto</c> then takes TorchSharp).
    /// </summary>
    public static Choice Choose(string? requested, DiffusionModel opened, string checkpointPath, string device, string precision,
                                bool frames, bool x0LimitGiven, int batch)
    {
        string engine = requested?.Trim().ToLowerInvariant() ?? Auto;
        var blockers = new List<string>();
        if (device != "cpu") blockers.Add($"--device {device}");
        if (precision != "fp32") blockers.Add($"--precision {precision}");
        if (frames) blockers.Add("--frames");
        if (x0LimitGiven) blockers.Add("--x0-limit");
        if (engine == Torch) return new Choice(Torch, "--engine torch");
        if (blockers.Count > 0)
        {
            if (engine == Onnx)
                throw new UsageException($"--engine onnx samples in float32 on the CPU with the model's declared x_0 limit: {string.Join(", ", blockers)} needs --engine torch.");
            return new Choice(Torch, $"{string.Join(", ", blockers)} runs on TorchSharp");
        }
        if (engine == Onnx) return new Choice(Onnx, "--engine onnx");
        if (opened.Conditioning is not null) return new Choice(Torch, "auto: class-conditional models are not timed on ONNX Runtime");

        var cache = KernelCache.Open(get_num_threads());
        string key = $"{opened.Name}|{opened.Entry.ParameterCount}|batch {batch}";
        var timing = cache.EngineTiming(key);
        string measured = "measured once on this machine";
        if (timing is null)
        {
            string graph = ExportedGraph(checkpointPath, opened);
            timing = Time(opened, graph, batch);
            cache.SetEngineTiming(key, timing);
            cache.Save();
            measured = "measured now";
        }
        double torchMs = timing.TorchMilliseconds, onnxMs = timing.OnnxMilliseconds;
        string figures = string.Create(CultureInfo.InvariantCulture, $"one call on {batch} images: {torchMs:F0} ms TorchSharp, {onnxMs:F0} ms ONNX Runtime, {measured}");
        return torchMs >= RequiredSpeedup * onnxMs ? new Choice(Onnx, $"auto: {figures}") : new Choice(Torch, $"auto: {figures}");
    }

    /// <summary>
    /// The checkpoint's chosen weights as an ONNX graph in the cache, exported on first use: named by the SHA-256 of the
    /// checkpoint file and the weights, so a changed checkpoint gets a new graph.
    /// </summary>
    public static string ExportedGraph(string checkpointPath, DiffusionModel opened)
    {
        string hash;
        using (var stream = File.OpenRead(checkpointPath))
            hash = Convert.ToHexStringLower(SHA256.HashData(stream))[..24];
        string path = Path.Combine(KernelCache.DefaultRoot(), "onnx", $"{hash}-{Options.WeightsName(opened.Weights).ToLowerInvariant()}.onnx");
        if (!File.Exists(path))
            OnnxExport.Export(checkpointPath, path, opened.Weights);
        return path;
    }

    /// <summary>Samples on ONNX Runtime with TorchSharp's noise for <paramref name="seed"/>; returns [count, C, H, W] in the data range.</summary>
    /// <param name="batchSize">Images per batch: the TorchSharp path's, so that both draw the same noise in the same order.</param>
    public static float[] SampleOnnx(string graph, int count, SamplerKind sampler, int steps, double eta, long seed, OnnxClassCondition? condition,
                                     int batchSize = Sampling.GridBatch, Action<int>? drawn = null)
    {
        using var model = OnnxDiffusionModel.Load(graph);
        using var noise = new TorchNoise(unchecked((ulong)seed));
        return model.Sample(count, sampler, steps, seed, eta, batchSize: batchSize, noise: noise, drawn: drawn, condition: condition);
    }

    /// <summary>The faster of two timed model calls on each engine after one warm-up, interleaved.</summary>
    private static EngineTiming Time(DiffusionModel opened, string graph, int batch)
    {
        var entry = opened.Entry;
        using var onnx = OnnxDiffusionModel.Load(graph);
        var module = opened.Module;
        bool wasTraining = module.training;
        module.eval();
        var torchTimes = new List<double>();
        var onnxTimes = new List<double>();
        var images = new float[(long)batch * onnx.ImageLength];
        new GaussianNoise(0).Fill(images);
        var timesteps = Enumerable.Repeat((long)entry.Schedule.Timesteps / 2, batch).ToArray();
        try
        {
            for (int round = 0; round < 3; round++)
            {
                using (var scope = NewDisposeScope())
                using (no_grad())
                {
                    var x = tensor(images, new long[] { batch, entry.Channels, entry.ImageSize, entry.ImageSize });
                    var t = tensor(timesteps);
                    var watch = Stopwatch.StartNew();
                    _ = module.forward(x, t).sum().item<float>();
                    if (round > 0) torchTimes.Add(watch.Elapsed.TotalMilliseconds);
                }
                var onnxWatch = Stopwatch.StartNew();
                _ = onnx.Predict(images, timesteps);
                if (round > 0) onnxTimes.Add(onnxWatch.Elapsed.TotalMilliseconds);
            }
        }
        finally
        {
            module.train(wasTraining);
        }
        return new EngineTiming(torchTimes.Min(), onnxTimes.Min());
    }
}

/// <summary>Replays a TorchSharp generator's standard normal draws, so Ddpm.Onnx's samplers see the noise GaussianDiffusion's do.</summary>
internal sealed class TorchNoise(ulong seed) : IGaussianNoise, IDisposable
{
    private readonly Generator generator = new(seed);

    public void Fill(Span<float> destination)
    {
        using var values = randn(new long[] { destination.Length }, ScalarType.Float32, generator: generator);
        values.data<float>().ToArray().AsSpan().CopyTo(destination);
    }

    public void Dispose() => generator.Dispose();
}
