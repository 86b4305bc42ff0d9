using System.Runtime.CompilerServices;
using Ddpm.Conditioning;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Evaluation;
using Ddpm.Models;
using Ddpm.Native;
using Ddpm.Specs;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm;

/// <summary>
/// A declared diffusion model with its weights: the generated U-Net, its noise schedule and training settings, ready to
/// train, sample and evaluate. The uses of the tutorial, from code:
/// <code>
/// using var model = DiffusionModel.Create&lt;MyUNet&gt;();           // fresh weights, or DiffusionModel.Load("last.ckpt")
/// var training = model.Training; training.Steps = 1000;           // the spec's training section, changed in code
/// model.Train(Datasets.Load("fashion-mnist", 1, 28), training, p =&gt; Console.WriteLine(p.Loss));
/// model.Save("model.ckpt");
/// model.SampleGrid("samples.png", count: 64);                    // SDE-DPM-Solver++(2M), 20 model calls (SpecDefaults.Sampler)
/// QualityReport report = model.Evaluate(samples: 1000);
/// </code>
/// </summary>
/// <remarks>
/// Use one instance from one thread at a time. TorchSharp 0.107 frees the temporary Scalars of its tensor operations
/// from finalizers, so a garbage collection that another thread starts while this one is inside libtorch can free one
/// mid-call (docs/performance.md, "TorchSharp's temporary Scalars"). The chance per call is small, but a process whose
/// other threads allocate all the time (a web server sampling per request) takes it on every call: there, sample with
/// <c>Ddpm.Onnx</c>'s <c>OnnxDiffusionModel</c> (an exported model on ONNX Runtime, no TorchSharp).
/// </remarks>
public sealed class DiffusionModel : IDisposable
{
    private readonly nn.Module<Tensor, Tensor, Tensor> raw;
    private nn.Module<Tensor, Tensor, Tensor>? ema;
    // The checkpoint of the last Train call (optimizer moments, EMA, step), so Save writes a resumable one.
    private Checkpoint? trained;
    // The file Load read and its SHA-256: Save writes that checkpoint again, whole (both weight sets, optimizer, RNG).
    private (string Path, byte[] Sha256)? loadedFrom;

    private DiffusionModel(ModelEntry entry, nn.Module<Tensor, Tensor, Tensor> raw, nn.Module<Tensor, Tensor, Tensor>? ema,
                           long step, SamplingWeights weights, string reason, string? dataset, IReadOnlyList<string>? classNames = null)
    {
        storedClassNames = classNames is { Count: > 0 } ? classNames : null;
        Entry = entry;
        this.raw = raw;
        this.ema = ema;
        Step = step;
        Weights = weights;
        WeightsReason = reason;
        Dataset = dataset;
    }

    /// <summary>The catalog entry: the model's name, spec, schedule, shapes and declared training settings.</summary>
    public ModelEntry Entry { get; }

    /// <summary>The model's name: its class name, e.g. FashionMnistUNet.</summary>
    public string Name => Entry.Name;

    /// <summary>The diffusion process the model was declared with: schedule tables, objective and sampling options.</summary>
    public GaussianDiffusion Diffusion => Entry.Diffusion;

    /// <summary>
    /// The network that <see cref="Sample"/>, <see cref="SampleGrid"/> and <see cref="Evaluate"/> use: the EMA weights when
    /// <see cref="Weights"/> is <see cref="SamplingWeights.Ema"/>, else the trained (raw) weights. It takes images
    /// [B, C, H, W] in [-1, 1] and timesteps [B] (int64) and returns the prediction its objective names (eps, x0 or v).
    /// </summary>
    public nn.Module<Tensor, Tensor, Tensor> Module => Weights == SamplingWeights.Ema && ema is not null ? ema : raw;

    /// <summary>The optimiser steps behind these weights (0 for fresh weights).</summary>
    public long Step { get; private set; }

    /// <summary>Which weights <see cref="Module"/> holds: <see cref="SamplingWeights.Ema"/> or <see cref="SamplingWeights.Raw"/>.</summary>
    public SamplingWeights Weights { get; private set; }

    /// <summary>Why those weights: what the checkpoint's evaluation found, or what was asked for.</summary>
    public string WeightsReason { get; private set; }

    /// <summary>The data set the weights were trained on (the run's `training.dataset`), if known.</summary>
    public string? Dataset { get; private set; }

    private IReadOnlyList<string>? storedClassNames;

    /// <summary>A class-conditional model's classes, label dropout and default guidance; null for an unconditional model.</summary>
    public ClassConditioning? Conditioning => Entry.Conditioning;

    /// <summary>
    /// A conditional model's class names, entry i naming label i: those its training data had (kept in checkpoints), else the
    /// ones its data set defines (fashion-mnist, cifar10), else the label numbers. Empty for an unconditional model.
    /// </summary>
    public IReadOnlyList<string> ClassNames
    {
        get
        {
            return NamesOfClasses(Conditioning, storedClassNames, Dataset ?? Entry.Training.Dataset);
        }
    }

    /// <summary>The rule of <see cref="ClassNames"/>, for a model's conditioning, the names its checkpoint kept and its data set.</summary>
    internal static IReadOnlyList<string> NamesOfClasses(ClassConditioning? conditioning, IReadOnlyList<string>? stored, string dataset)
    {
        if (conditioning is not { } c) return Array.Empty<string>();
        if (stored is { } kept && kept.Count == c.Classes) return kept;
        if (Datasets.KnownClassNames(dataset) is { } known && known.Count == c.Classes) return known;
        return Enumerable.Range(0, c.Classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>
    /// What to draw, from the words a user gives: a class name (any case; a unique prefix will do) or index; <c>all</c> for
    /// <paramref name="count"/> images spread over the classes in runs, so a grid has one row per class (the count rounds up
    /// to a multiple of the classes); <c>none</c> for the null class (unconditional, guidance 1).
    /// </summary>
    /// <param name="which">A class name or index, "all" or "none".</param>
    /// <param name="count">Images to draw.</param>
    /// <param name="guidance">The guidance scale; default the model's declared one.</param>
    /// <exception cref="InvalidOperationException">The model is not class-conditional.</exception>
    /// <exception cref="ArgumentException">No class matches, or the scale needs a null class the model never learned.</exception>
    public ClassCondition Classes(string which, int count, double? guidance = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(which);
        var c = Conditioning ?? throw new InvalidOperationException($"{Name} is not class-conditional: it takes no class.");
        int[] labels = ClassChoice.Labels(Name, ClassNames, which, count, out bool nullClass);
        var result = new ClassCondition(labels, nullClass ? 1.0 : guidance ?? c.Guidance);
        result.Check(c, labels.Length);
        return result;
    }

    /// <summary>
    /// The declared training settings (the spec's `training` section, or the defaults for an attributed model), as a copy
    /// to change and pass to <see cref="Train"/>.
    /// </summary>
    public TrainingSpec Training => Entry.Training.Clone();

    /// <summary>
    /// A model declared as <typeparamref name="TModel"/> (an attributed <c>[UNet(..., Schedule = typeof(...))]</c> class or a
    /// class generated from a YAML spec), with fresh weights drawn from <paramref name="seed"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The type is not a registered Ddpm model (for example, an attributed U-Net that
    /// names no schedule).</exception>
    public static DiffusionModel Create<TModel>(long seed = 0) where TModel : nn.Module<Tensor, Tensor, Tensor>
    {
        // Models register from their assembly's module initializer; make sure it has run.
        RuntimeHelpers.RunModuleConstructor(typeof(TModel).Module.ModuleHandle);
        var entry = ModelCatalog.Find(typeof(TModel).Name)
            ?? throw new ArgumentException($"{typeof(TModel).FullName} is not a registered Ddpm model: declare it in a spec, or give its " +
                                           "[UNet] attribute a schedule (Schedule = typeof(MySchedule)).", nameof(TModel));
        var model = Create(entry, seed);
        if (model.raw is not TModel)
        {
            model.Dispose();
            throw new ArgumentException($"The catalog's {entry.Name} is a {entry.SpecFile} model, not {typeof(TModel).FullName}: two models share the name.", nameof(TModel));
        }
        return model;
    }

    /// <summary>A model of the catalog by name (see <see cref="ModelCatalog.All"/>), with fresh weights drawn from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">No model of that name is compiled into the program.</exception>
    public static DiffusionModel CreateByName(string name, long seed = 0)
    {
        var entry = ModelCatalog.Find(name)
            ?? throw new ArgumentException($"Unknown model '{name}'. Compiled models: {ModelCatalog.Describe()}.", nameof(name));
        return Create(entry, seed);
    }

    private static DiffusionModel Create(ModelEntry entry, long seed)
    {
        Native.NativeSetup.EnsureConfigured(); // before the first libtorch call
        manual_seed(seed); // initial weights depend only on the seed, as in ddpm train
        return new DiffusionModel(entry, entry.CreateModel(), null, 0, SamplingWeights.Raw, "fresh weights", null);
    }

    /// <summary>
    /// The model a checkpoint (written by <c>ddpm train</c> or <see cref="Save"/>) holds, with the weights
    /// <paramref name="weights"/> names: <see cref="SamplingWeights.Unknown"/> (the default) takes the ones the run's
    /// evaluation scored better, else the EMA if the run keeps one.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidOperationException">The checkpoint holds a model this program does not compile, or its schedule
    /// differs from the compiled one.</exception>
    public static DiffusionModel Load(string checkpointPath, SamplingWeights weights = SamplingWeights.Unknown)
    {
        if (!File.Exists(checkpointPath)) throw new FileNotFoundException($"Checkpoint '{checkpointPath}' does not exist.", checkpointPath);
        Native.NativeSetup.EnsureConfigured(); // before the first libtorch call
        using var checkpoint = Checkpoint.Load(checkpointPath);
        var recorded = RunConfig.Read(checkpoint.SpecText);
        string name = recorded.Model
            ?? throw new InvalidOperationException($"{checkpointPath}: the checkpoint does not say which model it holds (no 'model:' in its settings).");
        var entry = ModelCatalog.Find(name)
            ?? throw new InvalidOperationException($"{checkpointPath} holds a {name}, which is not compiled into this program. Compiled models: {ModelCatalog.Describe()}.");
        checkpoint.CheckSchedule(entry.Schedule.Fingerprint);
        var model = entry.CreateModel();
        try
        {
            var (state, chosen, why) = checkpoint.SamplingState(weights);
            checkpoint.CopyInto(chosen, state, model);
            var kind = string.Equals(chosen, "ema", StringComparison.OrdinalIgnoreCase) ? SamplingWeights.Ema : SamplingWeights.Raw;
            // The chosen weights are the sampling weights; the other set is not kept (train again from ddpm train --resume).
            var loaded = kind == SamplingWeights.Ema
                ? new DiffusionModel(entry, model, model, checkpoint.Step, kind, why, recorded.Dataset, checkpoint.ClassNames)
                : new DiffusionModel(entry, model, null, checkpoint.Step, kind, why, recorded.Dataset, checkpoint.ClassNames);
            loaded.loadedFrom = (Path.GetFullPath(checkpointPath), FileSha256(checkpointPath));
            return loaded;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Trains the model on <paramref name="data"/> with <paramref name="training"/> (default: <see cref="Training"/>; its
    /// Steps, or else Epochs, say how long), continuing from the current weights with a fresh optimiser. Afterwards
    /// <see cref="Module"/> holds the EMA weights when the settings keep an EMA (ema_decay &gt; 0), else the trained ones.
    /// The data set name, evaluation and sample settings of <paramref name="training"/> are not used here (ddpm train uses them).
    /// </summary>
    /// <param name="data">Images of the model's shape, as bytes 0..255 ([N, C, H, W] order); see <see cref="Datasets"/>.</param>
    /// <param name="training">The spec's training section, as a <see cref="TrainingSpec"/>.</param>
    /// <param name="progress">Called on the training thread after every optimiser step.</param>
    /// <param name="cancellationToken">Stops training after the current step; the weights are those of the last step.</param>
    /// <exception cref="ArgumentException">The data's image shape is not the model's, or a setting is out of range.</exception>
    /// <exception cref="TrainingDivergedException">The loss or the weights became NaN or infinite.</exception>
    public void Train(ImageSet data, TrainingSpec? training = null, Action<TrainingProgress>? progress = null,
                      CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Channels != Entry.Channels || data.Height != Entry.ImageSize || data.Width != Entry.ImageSize)
            throw new ArgumentException($"{Name} takes {Entry.Channels}x{Entry.ImageSize}x{Entry.ImageSize} images; the data holds " +
                                        $"{data.Channels}x{data.Height}x{data.Width}.", nameof(data));
        var spec = (training ?? Training).Clone();
        spec.Eval.Every = 0;     // evaluation during training belongs to ddpm train's run folder
        spec.SampleEvery = 0;
        string device = Devices.Of(raw).ToString();
        string config = RunConfig.Write(Entry, spec, device, Allocator.Status);
        var loader = Trainer.CreateLoader(data, spec);
        using var trainer = new Trainer(raw, Diffusion, loader, spec, Entry.CreateModel, new TrainingCallbacks
        {
            Progress = progress is null ? null : new SynchronousProgress<TrainingProgress>(progress),
        }, config);
        if (ema is not null) CopyWeights(ema, trainer.EmaModel); // continue the average where it was
        trainer.Train(cancellationToken);
        trained?.Dispose();
        trained = trainer.Capture();
        Step += trainer.Step;
        Dataset = spec.Dataset;
        if (Conditioning is not null) storedClassNames = data.ClassNames;
        if (trainer.EmaModel is { } averaged)
        {
            if (ema is null || ReferenceEquals(ema, raw)) ema = Entry.CreateModel();
            ema.to(Devices.Of(raw));
            CopyWeights(averaged, ema);
            (Weights, WeightsReason) = (SamplingWeights.Ema, $"the EMA of {trainer.Step} training steps");
        }
        else
        {
            if (ema is not null && !ReferenceEquals(ema, raw)) ema.Dispose();
            ema = null;
            (Weights, WeightsReason) = (SamplingWeights.Raw, "trained without EMA");
        }
    }

    /// <summary>
    /// Writes a checkpoint of the last <see cref="Train"/> call (weights, EMA, optimiser state and settings), or, for a model
    /// <see cref="Load"/> read and that was not trained since, the checkpoint it was loaded from, whole; <see cref="Load"/>,
    /// <c>ddpm sample</c>, <c>ddpm eval</c> and <c>ddpm train --resume</c> read it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model holds fresh weights (neither trained nor loaded), or the file it
    /// was loaded from has changed since.</exception>
    public void Save(string checkpointPath)
    {
        if (trained is null && loadedFrom is null)
            throw new InvalidOperationException($"{Name} has not been trained or loaded here: fresh weights are not saved (train them first).");
        string target = Path.GetFullPath(checkpointPath);
        string? folder = Path.GetDirectoryName(target);
        if (folder is not null) Directory.CreateDirectory(folder);
        if (trained is not null)
        {
            trained.Save(checkpointPath);
            return;
        }
        // A loaded model saves the checkpoint it came from, whole, if that file still holds what was loaded.
        var (source, sha256) = loadedFrom!.Value;
        if (!File.Exists(source) || !FileSha256(source).AsSpan().SequenceEqual(sha256))
            throw new InvalidOperationException($"{source} has changed since {Name} was loaded from it: load it again to save it.");
        if (string.Equals(source, target, StringComparison.Ordinal)) return;
        string temporary = target + ".tmp";
        File.Copy(source, temporary, overwrite: true);
        File.Move(temporary, target, overwrite: true);
    }

    private static byte[] FileSha256(string path)
    {
        using var stream = File.OpenRead(path);
        return System.Security.Cryptography.SHA256.HashData(stream);
    }

    /// <summary>
    /// Draws as <see cref="Sample"/> does (same arguments, same images for the same seed) and returns them without tensor
    /// types: floats [count, C, H, W] in [-1, 1] with their shape, as Ddpm.Onnx's facade returns them.
    /// </summary>
    public SampledImages SampleImages(int count = 64, SamplerKind sampler = SpecDefaults.Sampler, int steps = SpecDefaults.SamplerSteps, long seed = 0,
                                      double eta = 0, ClassCondition? condition = null, IProgress<SamplingProgress>? progress = null,
                                      CancellationToken cancellationToken = default)
    {
        using var images = Sample(count, sampler, steps, seed, eta, condition, progress, cancellationToken);
        using var flat = images.contiguous();
        return new SampledImages(flat.data<float>().ToArray(), count, Entry.Channels, Entry.ImageSize, Entry.ImageSize);
    }

    /// <summary>
    /// Draws <paramref name="count"/> images with <see cref="Module"/>: [count, C, H, W] float32 on the CPU in the model's
    /// range [-1, 1]. The same seed gives the same images.
    /// </summary>
    /// <param name="count">Images to draw, at least 1 (drawn 64 at a time).</param>
    /// <param name="sampler">The default, SDE-DPM-Solver++(2M) (<see cref="SpecDefaults.Sampler"/>: Lu et al. 2022, fresh noise at every
    /// step; 0.98x DDPM's FID at 20 calls on a one-epoch model, docs/quality.md), DDPM (ancestral, Ho et al. 2020: every
    /// timestep), DDIM (Song et al. 2021) or DPM-Solver++(2M) (deterministic; 1.17x DDPM's FID on that model).</param>
    /// <param name="steps">Model calls of DDIM and the DPM-Solver++ forms (default <see cref="SpecDefaults.SamplerSteps"/>), at most the
    /// schedule's timesteps; DDPM ignores it.</param>
    /// <param name="seed">Seeds the starting noise and every step's noise.</param>
    /// <param name="eta">DDIM only: 0 is deterministic, 1 adds DDPM-like noise.</param>
    /// <param name="condition">A class-conditional model's classes and guidance (see <see cref="Classes"/>); required for one, null otherwise.</param>
    /// <param name="progress">Told before every model call and after every batch (on the sampling thread).</param>
    /// <param name="cancellationToken">Checked before every model call: a cancelled draw stops within one step with
    /// <see cref="OperationCanceledException"/>.</param>
    public Tensor Sample(int count = 64, SamplerKind sampler = SpecDefaults.Sampler, int steps = SpecDefaults.SamplerSteps, long seed = 0, double eta = 0,
                         ClassCondition? condition = null, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        CheckSampling(count, sampler, steps);
        int done = 0;
        var step = SamplingProgress.Hook(progress, cancellationToken, CallsPerBatch(sampler, steps), Sampling.GridBatch, count, () => done);
        var images = Sampling.Draw(Module, Diffusion, Entry.BatchShape(1), count, sampler, steps, eta, seed, Sampling.GridBatch, drawn: n => done = n,
                                   condition: condition, step: step, cancellationToken: cancellationToken);
        int calls = CallsPerBatch(sampler, steps) * ((count + Sampling.GridBatch - 1) / Sampling.GridBatch);
        progress?.Report(new SamplingProgress(calls, calls, count, count));
        return images;
    }

    /// <summary>Model calls one batch of <paramref name="sampler"/> makes: DDPM every timestep, the others <paramref name="steps"/>.</summary>
    private int CallsPerBatch(SamplerKind sampler, int steps) => sampler == SamplerKind.Ddpm ? Entry.Schedule.Timesteps : steps;

    /// <summary>Draws <paramref name="count"/> images as <see cref="Sample"/> does and writes them to <paramref name="pngPath"/> as a grid.</summary>
    /// <param name="pngPath">The PNG to write; its folder is created.</param>
    /// <param name="count">Images in the grid (a square-ish layout; images of 32 pixels or less are shown at twice their size).</param>
    /// <param name="sampler">The default sampler or another, as for <see cref="Sample"/>.</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++ (default <see cref="SpecDefaults.SamplerSteps"/>).</param>
    /// <param name="seed">Seeds the starting noise and every step's noise.</param>
    /// <param name="eta">DDIM only: 0 is deterministic, 1 adds DDPM-like noise.</param>
    /// <param name="framesGifPath">Also writes the denoising sequence as an animated GIF there (at most 256 images).</param>
    /// <param name="condition">A class-conditional model's classes and guidance (see <see cref="Classes"/>); required for one, null
    /// otherwise. <see cref="ClassCondition.EachClass"/> gives one row per class.</param>
    /// <param name="progress">Told before every model call (on the sampling thread).</param>
    /// <param name="cancellationToken">Checked before every model call: a cancelled draw stops within one step, writing nothing.</param>
    public void SampleGrid(string pngPath, int count = 64, SamplerKind sampler = SpecDefaults.Sampler, int steps = SpecDefaults.SamplerSteps, long seed = 0,
                           double eta = 0, string? framesGifPath = null, ClassCondition? condition = null, IProgress<SamplingProgress>? progress = null,
                           CancellationToken cancellationToken = default)
    {
        CheckSampling(count, sampler, steps);
        // With frames the whole count is one batch.
        int batch = framesGifPath is null ? Sampling.GridBatch : count;
        var step = SamplingProgress.Hook(progress, cancellationToken, CallsPerBatch(sampler, steps), batch, count, () => 0);
        Sampling.WriteGrid(Module, Diffusion, Entry.BatchShape(count), sampler, steps, eta, seed, pngPath, framesGifPath, condition, step,
                           cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Scores <paramref name="samples"/> images drawn with <see cref="Module"/> against the data set's test split (FID, KID,
    /// precision, recall and class histogram in the data set's feature net, with the floor of real images at the same n):
    /// what <c>ddpm eval</c> prints. Fashion-MNIST's feature net ships with Ddpm.Runtime; other data sets train theirs once per
    /// machine on first use and cache it.
    /// </summary>
    /// <param name="samples">Images to draw and score; KID is the figure to read below about 1000.</param>
    /// <param name="sampler">The default sampler or another, as for <see cref="Sample"/>.</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++ (default <see cref="SpecDefaults.SamplerSteps"/>).</param>
    /// <param name="seed">Seeds the sampling and the metrics' subsets.</param>
    /// <param name="dataset">The data set the images imitate; default: the one the weights were trained on.</param>
    /// <param name="log">Progress messages (feature net training, data loading).</param>
    /// <param name="condition">A class-conditional model's classes and guidance (required for one; <see cref="ClassCondition.Balanced"/>
    /// scores every class equally); the report then says how many images the feature net assigns to the class asked for.</param>
    /// <exception cref="InvalidOperationException">No data set given and none known for these weights.</exception>
    public QualityReport Evaluate(int samples = 1000, SamplerKind sampler = SpecDefaults.Sampler, int steps = SpecDefaults.SamplerSteps, long seed = 0,
                                  string? dataset = null, Action<string>? log = null, ClassCondition? condition = null)
    {
        CheckSampling(samples, sampler, steps);
        string name = dataset ?? Dataset
            ?? throw new InvalidOperationException($"{Name}: say which data set the samples imitate (dataset: \"fashion-mnist\"); these weights record none.");
        using var quality = SampleQuality.Create(name, log);
        using var images = Sample(samples, sampler, steps, seed, condition: condition);
        return quality.Score(images, (int)(seed & int.MaxValue), condition?.Labels);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        trained?.Dispose();
        if (ema is not null && !ReferenceEquals(ema, raw)) ema.Dispose();
        raw.Dispose();
    }

    private void CheckSampling(int count, SamplerKind sampler, int steps)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "Draw at least one image.");
        int timesteps = Entry.Schedule.Timesteps;
        if (sampler != SamplerKind.Ddpm && (steps < 1 || steps > timesteps))
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{sampler} takes 1 to {timesteps} model calls (the schedule's timesteps).");
    }

    private static void CopyWeights(nn.Module from, nn.Module? to)
    {
        if (to is null) return;
        using var _ = no_grad();
        var target = to.state_dict();
        foreach (var (key, value) in from.state_dict())
            target[key].copy_(value);
    }
}
