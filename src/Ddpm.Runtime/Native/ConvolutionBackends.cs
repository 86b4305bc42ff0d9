using System.Diagnostics;
using System.Globalization;
using Ddpm.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Native;

/// <summary>
/// Chooses, per model and machine, between oneDNN and libtorch's own convolution kernels by checking them
/// (DDPM_ONEDNN=auto, the default): every convolution shape of the model is run forward and backward on both, in the
/// compute precision, against float64 (<see cref="KernelCheck"/>). When every shape passed, the model itself is timed on both
/// backends for what it is about to do (a forward and backward pass for training, a forward pass for sampling) at a small
/// batch: timing single convolutions misleads, since oneDNN also reorders tensors into its blocked layout between layers and
/// needs every new buffer zeroed (on AMD EPYC its shapes summed 7% faster while the model's training step was 6% and its
/// sampling step 40% slower). oneDNN is used only when it passed on every shape and ran the model at least 5% faster.
/// <para>
/// Why the whole model, not per layer: libtorch's switch is process-wide and read again when the backward pass runs
/// (the backward of a oneDNN forward runs on libtorch's own kernels if the switch is off by then, and the other way round:
/// ConvolutionBackendsTests shows it by the last bits of the weight gradients), so a layer-by-layer choice would need the switch flipped inside
/// autograd between one layer's gradient and the next, which TorchSharp offers no hook for. A model with one shape that
/// fails therefore runs on libtorch's own kernels throughout, and the line says which shapes failed.
/// </para>
/// Results are cached per machine (<see cref="KernelCache"/>), so only the first use of a shape on a machine pays for its check.
/// </summary>
internal static class ConvolutionBackends
{
    /// <summary>oneDNN must be at least this much faster to be chosen: smaller gains are within a machine's noise.</summary>
    public const double RequiredSpeedup = 1.05;

    /// <summary>Images per timing run of the model.</summary>
    public const int TimingBatch = 4;

    /// <summary>What a model is about to do, which decides what is timed.</summary>
    public enum Purpose
    {
        /// <summary>Forward and backward passes.</summary>
        Training,
        /// <summary>Forward passes without gradients.</summary>
        Sampling,
    }

    private static readonly object Gate = new();

    /// <summary>The last choice, as one line ("convolutions: ..."), or null before any.</summary>
    public static string? Summary { get; private set; }

    /// <summary>What one model was given.</summary>
    /// <param name="OneDnn">Whether oneDNN runs the model's convolutions.</param>
    /// <param name="Shapes">The distinct convolution shapes of the model.</param>
    /// <param name="Failed">The shapes oneDNN failed on (empty when it passed on all).</param>
    /// <param name="OneDnnMilliseconds">oneDNN's time for one timing pass of the model (0 when it failed a shape).</param>
    /// <param name="OwnMilliseconds">The same for libtorch's own kernels.</param>
    /// <param name="CheckSeconds">Time spent checking shapes not in the cache (0 when all were).</param>
    /// <param name="Line">The one-line summary.</param>
    public sealed record Choice(bool OneDnn, IReadOnlyList<ConvolutionShape> Shapes, IReadOnlyList<ConvolutionShape> Failed,
        double OneDnnMilliseconds, double OwnMilliseconds, double CheckSeconds, string Line);

    /// <summary>
    /// Checks <paramref name="model"/>'s convolution shapes (from the cache where known), switches libtorch to the chosen
    /// backend and returns the choice. Under DDPM_ONEDNN=off, zero or unsafe it changes nothing and says so.
    /// </summary>
    /// <param name="model">The network; its <see cref="Conv2d"/> and <see cref="WeightStandardizedConv2d"/> layers are checked.</param>
    /// <param name="dtype">The compute precision (float32, or bfloat16 under <c>--precision bf16</c>).</param>
    /// <param name="imageSize">The model's image size: shapes are timed at it.</param>
    /// <param name="cacheRoot">The cache root; default <see cref="KernelCache.DefaultRoot"/>.</param>
    /// <param name="channels">The model's image channels.</param>
    /// <param name="purpose">What the model is about to do: decides what is timed.</param>
    /// <param name="createCopy">Makes another module like <paramref name="model"/>: a model computing in bf16 runs behind a
    /// converted copy (PrecisionCast), so a copy converted to <paramref name="dtype"/> is what is timed; without it only float32 models are timed.</param>
    public static Choice Choose(nn.Module model, ScalarType dtype, int imageSize, int channels, Purpose purpose, string? cacheRoot = null,
                                Func<nn.Module<Tensor, Tensor, Tensor>>? createCopy = null)
    {
        OneDnn.Configure();
        var shapes = ShapesOf(model);
        var mode = OneDnn.CurrentMode;
        if (mode != OneDnn.Mode.Auto)
        {
            var fixedChoice = new Choice(mode != OneDnn.Mode.Off, shapes, [], 0, 0, 0, $"convolutions: {OneDnn.Status} ({OneDnn.EnvironmentVariable})");
            Summary = fixedChoice.Line;
            return fixedChoice;
        }
        lock (Gate)
        {
            var cache = KernelCache.Open(get_num_threads(), cacheRoot);
            var watch = Stopwatch.StartNew();
            bool checkedAny = false;
            var results = new List<(ConvolutionShape Shape, ConvolutionCheckResult Result)>();
            using (enable_grad()) // the check runs a backward pass, also when the caller samples under no_grad
            {
                foreach (var shape in shapes)
                {
                    string key = shape.Key(dtype);
                    if (cache.Convolution(key) is not { } result)
                    {
                        double oneDnnError = KernelCheck.ConvolutionError(shape, dtype, oneDnn: true);
                        double ownError = KernelCheck.ConvolutionError(shape, dtype, oneDnn: false);
                        result = new ConvolutionCheckResult(oneDnnError < KernelCheck.ToleranceFor(dtype), oneDnnError, ownError);
                        cache.SetConvolution(key, result);
                        checkedAny = true;
                    }
                    results.Add((shape, result));
                }
                // Time the model only when oneDNN could be chosen, and once per model, precision and purpose on a machine.
                ModelTiming? timing = null;
                if (results.All(r => r.Result.OneDnnPassed) && Timeable(model, dtype, createCopy) is { } denoiser)
                {
                    string key = $"{string.Join(',', shapes.Select(s => s.Key(dtype)))}|{channels}x{imageSize}|{purpose}|batch {TimingBatch}";
                    key = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..16];
                    timing = cache.Timing(key);
                    if (timing is null)
                    {
                        try { timing = TimeModel(denoiser, dtype, imageSize, channels, purpose); }
                        finally { if (!ReferenceEquals(denoiser, model)) denoiser.Dispose(); }
                        cache.SetTiming(key, timing);
                        checkedAny = true;
                    }
                }
                double checkSeconds = checkedAny ? watch.Elapsed.TotalSeconds : 0;
                if (checkedAny) cache.Save();
                return Apply(results, timing, purpose, checkSeconds);
            }
        }
    }

    /// <summary>
    /// <see cref="Choose"/> for a model about to run on <paramref name="device"/> in <paramref name="precision"/> (<c>fp32</c>,
    /// <c>bf16</c>, <c>fp16</c>): the line to print, or null off the CPU (the switch is for libtorch's CPU kernels).
    /// </summary>
    public static string? ChooseFor(nn.Module model, string precision, int imageSize, int channels, Purpose purpose, string device,
                                    Func<nn.Module<Tensor, Tensor, Tensor>>? createCopy = null)
    {
        if (!string.Equals(new Device(device).type.ToString(), "CPU", StringComparison.OrdinalIgnoreCase)) return null;
        var dtype = precision.ToLowerInvariant() switch
        {
            "bf16" => ScalarType.BFloat16,
            _ => ScalarType.Float32,
        };
        return Choose(model, dtype, imageSize, channels, purpose, createCopy: createCopy).Line;
    }

    /// <summary>Decides from the shapes' results and sets libtorch's switch (separate from <see cref="Choose"/> so a test can feed results).</summary>
    internal static Choice Apply(IReadOnlyList<(ConvolutionShape Shape, ConvolutionCheckResult Result)> results, ModelTiming? timing,
        Purpose purpose, double checkSeconds)
    {
        var shapes = results.Select(r => r.Shape).ToList();
        var failed = results.Where(r => !r.Result.OneDnnPassed).Select(r => r.Shape).ToList();
        double oneDnnMs = timing?.OneDnnMilliseconds ?? 0, ownMs = timing?.OwnMilliseconds ?? 0;
        bool useOneDnn = shapes.Count > 0 && failed.Count == 0 && timing is not null && ownMs >= RequiredSpeedup * oneDnnMs;
        bool? reachable = OneDnn.SetConvolutionBackend(useOneDnn);
        if (reachable is null) useOneDnn = false;

        string what = purpose == Purpose.Training ? "a training pass" : "a sampling pass";
        string times = string.Create(CultureInfo.InvariantCulture, $"{what} of {TimingBatch} images: {ownMs:F0} ms own, {oneDnnMs:F0} ms oneDNN");
        string check = checkSeconds > 0 ? string.Create(CultureInfo.InvariantCulture, $"; checked in {checkSeconds:F1} s") : "; from the kernel cache";
        string line = reachable is null
            ? "convolutions: libtorch as it is (its oneDNN switch cannot be reached here)"
            : useOneDnn
                ? $"convolutions: oneDNN for all {shapes.Count} shapes (each agreed with float64; {times}{check})"
                : failed.Count > 0
                    ? $"convolutions: libtorch's own for all {shapes.Count} shapes (oneDNN failed {failed.Count} of {shapes.Count}: {Describe(failed)}{check})"
                    : timing is null
                        ? $"convolutions: libtorch's own for all {shapes.Count} shapes (oneDNN agreed with float64; this model could not be timed{check})"
                        : $"convolutions: libtorch's own for all {shapes.Count} shapes (oneDNN agreed with float64 but was not 5% faster: {times}{check})";
        Summary = line;
        return new Choice(useOneDnn, shapes, failed, oneDnnMs, ownMs, checkSeconds, line);
    }

    /// <summary>The distinct convolution shapes of a model, in the order its layers were registered.</summary>
    public static IReadOnlyList<ConvolutionShape> ShapesOf(nn.Module model)
    {
        var shapes = new List<ConvolutionShape>();
        foreach (var module in model.modules().Prepend(model)) // TorchSharp lists the submodules only
        {
            ConvolutionShape? shape = module switch
            {
                Conv2d conv when !conv.transposed && conv.kernel_size[0] == conv.kernel_size[1] =>
                    new ConvolutionShape(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0],
                        conv.padding_type is null ? conv.padding?[0] ?? 0 : (conv.kernel_size[0] - 1) / 2, conv.groups),
                WeightStandardizedConv2d ws => new ConvolutionShape(ws.Weight.shape[1], ws.Weight.shape[0], ws.Weight.shape[2], 1, ws.Padding, 1),
                _ => null,
            };
            if (shape is { } s && !shapes.Contains(s)) shapes.Add(s);
        }
        return shapes;
    }

    /// <summary>Median milliseconds of one pass of the model at <see cref="TimingBatch"/> images on each backend, interleaved.</summary>
    /// <summary>The module to time: the model itself in float32, a copy converted to <paramref name="dtype"/> otherwise (null without a factory).</summary>
    private static nn.Module<Tensor, Tensor, Tensor>? Timeable(nn.Module model, ScalarType dtype, Func<nn.Module<Tensor, Tensor, Tensor>>? createCopy)
    {
        if (model is not nn.Module<Tensor, Tensor, Tensor> denoiser) return null;
        if (dtype == ScalarType.Float32) return denoiser;
        if (createCopy is null) return null;
        var copy = createCopy();
        copy.to(dtype).to(denoiser.parameters().First().device);
        return copy;
    }

    private static ModelTiming TimeModel(nn.Module<Tensor, Tensor, Tensor> model, ScalarType dtype, int imageSize, int channels, Purpose purpose)
    {
        var device = model.parameters().First().device;
        bool wasTraining = model.training;
        var own = new List<double>();
        var oneDnn = new List<double>();
        try
        {
            if (purpose == Purpose.Sampling) model.eval();
            for (int round = 0; round < 3; round++)
                foreach (bool useOneDnn in new[] { false, true })
                {
                    bool? previous = OneDnn.SetConvolutionBackend(useOneDnn);
                    using var scope = NewDisposeScope();
                    var x = randn(new long[] { TimingBatch, channels, imageSize, imageSize }, dtype: dtype, device: device);
                    var t = full(new long[] { TimingBatch }, 1L, dtype: ScalarType.Int64, device: device);
                    var watch = Stopwatch.StartNew();
                    if (purpose == Purpose.Training)
                        model.forward(x, t).to(ScalarType.Float32).square().mean().backward();
                    else
                    {
                        using var noGrad = no_grad();
                        _ = model.forward(x, t).to(ScalarType.Float32).sum().item<float>(); // reads the result back: the work has finished
                    }
                    if (round > 0) (useOneDnn ? oneDnn : own).Add(watch.Elapsed.TotalMilliseconds); // round 0 sets up kernels
                    if (previous is bool before) OneDnn.SetConvolutionBackend(before);
                }
        }
        finally
        {
            model.zero_grad();
            model.train(wasTraining);
        }
        return new ModelTiming(own.Min(), oneDnn.Min());
    }

    /// <summary>"28 and 84 input channels" from the failed shapes.</summary>
    private static string Describe(IReadOnlyList<ConvolutionShape> failed)
    {
        var channels = failed.Select(s => s.InChannels).Distinct().Order().Select(c => c.ToString(CultureInfo.InvariantCulture)).ToList();
        string list = channels.Count == 1 ? channels[0] : $"{string.Join(", ", channels.SkipLast(1))} and {channels[^1]}";
        return $"{list} input channels";
    }
}
