using Ddpm.Conditioning;
using Ddpm.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Diffusion;

/// <summary>Draws a batch of images with a model and writes the grid (and optionally the denoising animation).</summary>
public static class Sampling
{
    /// <summary>Images drawn at once for a grid.</summary>
    public const int GridBatch = 64;

    /// <summary>
    /// Draws <c>shape[0]</c> images with <paramref name="sampler"/> from one generator seeded with <paramref name="seed"/> and
    /// writes them as a PNG grid (square-ish, small images doubled in size); with <paramref name="framesPath"/>, also the
    /// denoising sequence as an animated GIF. The model is put in eval mode while drawing and restored after.
    /// </summary>
    /// <param name="model">The network: images [B, C, H, W] and timesteps [B] to its objective's prediction.</param>
    /// <param name="diffusion">The schedule and objective the model was trained with.</param>
    /// <param name="shape">[N, C, H, W] of the images to draw.</param>
    /// <param name="sampler">DDPM, DDIM or DPM-Solver++(2M).</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++ (DDPM always runs every timestep).</param>
    /// <param name="eta">DDIM's eta, 0 (deterministic) to 1 (DDPM-like noise).</param>
    /// <param name="seed">Seeds the starting noise and every step's noise.</param>
    /// <param name="path">The PNG to write; its folder is created.</param>
    /// <param name="framesPath">Where to write the animated GIF, or null for none.</param>
    /// <param name="condition">For a class-conditional model, the class of each image and the guidance scale (required); null otherwise.</param>
    /// <param name="step">Called before every model call (it may throw to stop the draw).</param>
    /// <param name="progress">Called after every step of every batch with (steps done, steps in all) of that batch.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public static void WriteGrid(nn.Module<Tensor, Tensor, Tensor> model, GaussianDiffusion diffusion, long[] shape,
                                 SamplerKind sampler, int steps, double eta, long seed, string path, string? framesPath = null,
                                 ClassCondition? condition = null, Action? step = null, Action<int, int>? progress = null,
                                 CancellationToken cancellationToken = default)
    {
        CheckCondition(model, condition, (int)shape[0]);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            var frames = framesPath is null ? null : new List<Tensor>(); // made in this scope, freed with it
            using var generator = frames is null ? null : new Generator(unchecked((ulong)seed));
            // Without frames, in batches (bounded memory for any count; one batch of up to 64 draws exactly as before).
            using var images = frames is null
                ? Draw(model, diffusion, shape, (int)shape[0], sampler, steps, eta, seed, GridBatch, condition: condition, step: step,
                       progress: progress, cancellationToken: cancellationToken)
                : diffusion.Sample(Hooked(Denoiser(model, condition, 0, (int)shape[0]), step), shape, sampler, steps, eta, generator, frames,
                                   Devices.Of(model), progress, cancellationToken);
            CheckFinite(images);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            int columns = GridLayout.Columns(shape[0], condition?.Labels);
            ImageGrid.SavePng(images, path, columns: columns, scale: Scale(shape[^1]));
            if (frames is not null && framesPath is not null)
            {
                // Every 10th step of a long chain keeps the animation small; the last frame is x_0.
                int stride = Math.Max(1, frames.Count / 30);
                var picked = frames.Where((_, i) => i % stride == 0 || i == frames.Count - 1).ToList();
                AnimatedGif.SaveDenoising(framesPath, picked, columns: columns, scale: Scale(shape[^1]));
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>
    /// Draws <paramref name="count"/> images in batches of at most <paramref name="batchSize"/> (bounded memory for any count),
    /// all from one generator seeded with <paramref name="seed"/>; returns them on the CPU as [count, C, H, W] in the model's range.
    /// </summary>
    /// <param name="model">The network: images [B, C, H, W] and timesteps [B] to its objective's prediction.</param>
    /// <param name="diffusion">The schedule and objective the model was trained with.</param>
    /// <param name="imageShape">The shape of one image batch; only its last three sizes (C, H, W) are used.</param>
    /// <param name="count">Images to draw, at least 1.</param>
    /// <param name="sampler">DDPM, DDIM or DPM-Solver++(2M).</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++ (DDPM always runs every timestep).</param>
    /// <param name="eta">DDIM's eta, 0 (deterministic) to 1 (DDPM-like noise).</param>
    /// <param name="seed">Seeds the one generator all batches draw from, so a count gives the same images for any batch size up to it.</param>
    /// <param name="batchSize">Images per model call, at least 1: bounds memory.</param>
    /// <param name="drawn">Called after each batch with the number of images drawn so far.</param>
    /// <param name="condition">For a class-conditional model, the class of each image and the guidance scale (required); null otherwise.</param>
    /// <param name="step">Called before every model call (it may throw to stop the draw).</param>
    /// <param name="progress">Called after every step of every batch with (steps done, steps in all) of that batch.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public static Tensor Draw(nn.Module<Tensor, Tensor, Tensor> model, GaussianDiffusion diffusion, long[] imageShape, int count,
                              SamplerKind sampler, int steps, double eta, long seed, int batchSize, Action<int>? drawn = null,
                              ClassCondition? condition = null, Action? step = null, Action<int, int>? progress = null,
                              CancellationToken cancellationToken = default)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be >= 1.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1.");
        CheckCondition(model, condition, count);
        bool wasTraining = model.training;
        model.eval();
        var parts = new List<Tensor>();
        try
        {
            using var generator = new Generator(unchecked((ulong)seed));
            for (int done = 0; done < count;)
            {
                int n = Math.Min(batchSize, count - done);
                using var scope = NewDisposeScope();
                var shape = new long[] { n, imageShape[^3], imageShape[^2], imageShape[^1] };
                var denoiser = Denoiser(model, condition, done, n);
                using var hooked = step is null ? null : new StepHook(denoiser, step);
                parts.Add(diffusion.Sample(hooked ?? denoiser, shape, sampler, steps, eta, generator, device: Devices.Of(model), progress: progress,
                                           cancellationToken: cancellationToken).cpu().MoveToOuterDisposeScope());
                if (!ReferenceEquals(denoiser, model)) denoiser.Dispose();
                done += n;
                drawn?.Invoke(done);
            }
            return parts.Count == 1 ? parts[0].alias() : cat(parts, 0);
        }
        finally
        {
            foreach (var part in parts) part.Dispose();
            if (wasTraining) model.train();
        }
    }

    /// <summary>
    /// Stops a draw whose images hold NaN or infinite values (they would be written as black or white images): one
    /// <see cref="InvalidOperationException"/> saying how many images are affected.
    /// </summary>
    internal static void CheckFinite(Tensor images)
    {
        using var scope = NewDisposeScope();
        var finite = isfinite(images);
        if (finite.all().item<bool>()) return;
        long count = images.shape[0];
        long bad = count - finite.reshape(count, -1).all(1).sum().item<long>();
        throw NonFiniteSamples(bad, count);
    }

    /// <summary>The same for images drawn outside TorchSharp (ONNX Runtime): <paramref name="count"/> images in one array.</summary>
    internal static void CheckFinite(ReadOnlySpan<float> images, int count)
    {
        int per = images.Length / Math.Max(count, 1), bad = 0;
        for (int i = 0; i < count; i++)
            foreach (float v in images.Slice(i * per, per))
                if (!float.IsFinite(v)) { bad++; break; }
        if (bad > 0) throw NonFiniteSamples(bad, count);
    }

    private static InvalidOperationException NonFiniteSamples(long bad, long count) =>
        new($"Sampling produced NaN or infinite values in {bad} of {count} images, so no image was written: the weights or the sampler " +
            "diverged (try another --sampler, --x0-limit clip, or other weights).");

    /// <summary>
    /// The one rule for conditional sampling: a class-conditional model needs a class per image (it never silently draws
    /// from the null class), and an unconditional model takes none.
    /// </summary>
    public static void CheckCondition(nn.Module<Tensor, Tensor, Tensor> model, ClassCondition? condition, int count)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model is IClassConditional conditional)
        {
            if (condition is null)
                throw new ArgumentException(
                    $"{model.GetType().Name} is class-conditional ({conditional.Conditioning.Classes} classes): say which class to draw " +
                    $"(a class name or index, 'all' for one row per class), or ask for the null class ('none') to draw unconditionally.");
            condition.Check(conditional.Conditioning, count);
        }
        else if (condition is not null)
            throw new ArgumentException($"{model.GetType().Name} is not class-conditional: it takes no class.");
    }

    /// <summary>The module the samplers call: the model itself, or for a conditional model the guided view of images [offset, offset + n).</summary>
    private static nn.Module<Tensor, Tensor, Tensor> Denoiser(nn.Module<Tensor, Tensor, Tensor> model, ClassCondition? condition, int offset, int n)
    {
        if (condition is null || model is not IClassConditional conditional) return model;
        var labels = tensor(condition.Labels.Skip(offset).Take(n).Select(l => (long)l).ToArray(), ScalarType.Int64).to(Devices.Of(model));
        return new GuidedDenoiser(conditional, labels, condition.Guidance);
    }

    private static nn.Module<Tensor, Tensor, Tensor> Hooked(nn.Module<Tensor, Tensor, Tensor> denoiser, Action? step) =>
        step is null ? denoiser : new StepHook(denoiser, step);

    /// <summary>
    /// The denoiser with <c>step</c> called before each of its calls: every sampler calls its model once per step, so this is
    /// the per-step hook (progress, cancellation) without touching the samplers. It holds the denoiser without owning it.
    /// </summary>
    private sealed class StepHook(nn.Module<Tensor, Tensor, Tensor> inner, Action step) : nn.Module<Tensor, Tensor, Tensor>(nameof(StepHook))
    {
        public override Tensor forward(Tensor images, Tensor timesteps)
        {
            step();
            return inner.forward(images, timesteps);
        }

        protected override void RegisterComponents() { }
    }

    /// <summary>Small images are upscaled so a grid is easy to look at.</summary>
    private static int Scale(long size) => GridLayout.Scale(size);
}
