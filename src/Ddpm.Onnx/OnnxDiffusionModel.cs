using System.Globalization;
using Ddpm.Conditioning;
using Ddpm.Diffusion;
using Ddpm.Imaging;
using Ddpm.Schedules;
using Ddpm.Specs;
using Microsoft.ML.OnnxRuntime;

namespace Ddpm.Onnx;

/// <summary>
/// A diffusion model exported by <c>ddpm export --format onnx</c>, run on ONNX Runtime: the U-Net from the file's graph,
/// its schedule, objective and image shape from the file's metadata. No TorchSharp, no libtorch.
/// <code>
/// using var model = OnnxDiffusionModel.Load("fashion.onnx");
/// float[] images = model.Sample(count: 16, SamplerKind.DpmSolver2M, steps: 20, seed: 1);   // [16, C, H, W] in [-1, 1]
/// model.SaveGrid(images, "grid.png");
/// </code>
/// One instance runs one model call at a time (ONNX Runtime parallelises inside the call).
/// </summary>
public sealed class OnnxDiffusionModel : IDisposable
{
    private readonly InferenceSession session;
    private readonly string[] inputNames;
    private readonly string[] outputNames = { OnnxMetadata.PredictionOutput };

    private OnnxDiffusionModel(InferenceSession session, string path, IReadOnlyDictionary<string, string> metadata)
    {
        this.session = session;
        Path = path;
        Metadata = metadata;
        string Get(string key) => metadata.TryGetValue(key, out var value) && value.Length > 0
            ? value
            : throw new InvalidDataException($"{path}: the model's metadata has no '{key}'; export it again with ddpm export --format onnx.");
        int Int(string key) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new InvalidDataException($"{path}: metadata '{key}' is '{Get(key)}', not a positive whole number.");
        void InRange(string key, double value, NumberRange range)
        {
            if (!range.Allows(value))
                throw new InvalidDataException($"{path}: metadata '{key}' is {value.ToString(CultureInfo.InvariantCulture)}; it must be {range.Text}.");
        }
        try
        {
            Name = Get(OnnxMetadata.ModelKey);
            SpecFile = metadata.TryGetValue(OnnxMetadata.SpecFileKey, out var spec) ? spec : "";
            Channels = Int(OnnxMetadata.ChannelsKey);
            ImageSize = Int(OnnxMetadata.ImageSizeKey);
            // Crafted metadata is not trusted: the ranges of the spec rules, then the graph's own declared image shape.
            InRange(OnnxMetadata.ChannelsKey, Channels, OnnxMetadata.ChannelsRange);
            InRange(OnnxMetadata.ImageSizeKey, ImageSize, OnnxMetadata.ImageSizeRange);
            if (session.InputMetadata.TryGetValue(OnnxMetadata.ImagesInput, out var imagesInput))
            {
                int[] declared = imagesInput.Dimensions;
                if (declared.Length != 4)
                    throw new InvalidDataException($"{path}: the graph's '{OnnxMetadata.ImagesInput}' input has {declared.Length} dimensions; a model exported by Ddpm has 4 (batch, channels, height, width).");
                (string Key, int Value, int Declared, string What)[] axes =
                [
                    (OnnxMetadata.ChannelsKey, Channels, declared[1], "channels"),
                    (OnnxMetadata.ImageSizeKey, ImageSize, declared[2], "height"),
                    (OnnxMetadata.ImageSizeKey, ImageSize, declared[3], "width"),
                ];
                foreach (var (key, value, size, what) in axes)
                    if (size > 0 && size != value)
                        throw new InvalidDataException($"{path}: metadata '{key}' is {value}, but the graph's '{OnnxMetadata.ImagesInput}' input declares {what} {size}; the file was edited after ddpm export.");
            }
            Objective = Get(OnnxMetadata.ObjectiveKey);
            if (Objective is not ("eps" or "x0" or "v"))
                throw new InvalidDataException($"{path}: metadata '{OnnxMetadata.ObjectiveKey}' is '{Objective}'; expected eps, x0 or v.");
            ClipX0 = Get(OnnxMetadata.ClipX0Key) == "true";
            DynamicThreshold = OnnxMetadata.ParseDoubles(Get(OnnxMetadata.DynamicThresholdKey), OnnxMetadata.DynamicThresholdKey)[0];
            InRange(OnnxMetadata.DynamicThresholdKey, DynamicThreshold, OnnxMetadata.DynamicThresholdRange);
            var betas = OnnxMetadata.ParseDoubles(Get(OnnxMetadata.BetasKey), OnnxMetadata.BetasKey);
            var alphasCumprod = OnnxMetadata.ParseDoubles(Get(OnnxMetadata.AlphasCumprodKey), OnnxMetadata.AlphasCumprodKey);
            InRange(OnnxMetadata.TimestepsKey, Int(OnnxMetadata.TimestepsKey), OnnxMetadata.TimestepsRange);
            if (Int(OnnxMetadata.TimestepsKey) != betas.Length)
                throw new InvalidDataException($"{path}: metadata says {Get(OnnxMetadata.TimestepsKey)} timesteps but holds {betas.Length} betas.");
            CheckSchedule(betas, alphasCumprod);
            ScheduleName = metadata.TryGetValue(OnnxMetadata.ScheduleKindKey, out var kind) ? kind : "custom";
            // The tables from the betas, by the code that made the training program's (ScheduleMath), so they are its numbers.
            Schedule = new ScheduleTables(betas);
            if (metadata.ContainsKey(OnnxMetadata.ClassesKey))
            {
                Classes = Int(OnnxMetadata.ClassesKey);
                ClassDropout = OnnxMetadata.ParseDoubles(Get(OnnxMetadata.ClassDropoutKey), OnnxMetadata.ClassDropoutKey)[0];
                InRange(OnnxMetadata.ClassesKey, Classes, ClassRules.Classes);
                InRange(OnnxMetadata.ClassDropoutKey, ClassDropout, ClassRules.ClassDropout);
                Guidance = OnnxMetadata.ParseDoubles(Get(OnnxMetadata.GuidanceKey), OnnxMetadata.GuidanceKey)[0];
                InRange(OnnxMetadata.GuidanceKey, Guidance, ClassRules.Guidance);
                ClassNames = System.Text.Json.JsonSerializer.Deserialize<string[]>(Get(OnnxMetadata.ClassNamesKey)) ?? Array.Empty<string>();
                if (ClassNames.Count != Classes)
                    throw new InvalidDataException($"{path}: metadata '{OnnxMetadata.ClassNamesKey}' names {ClassNames.Count} classes; the model has {Classes}.");
            }
            inputNames = IsConditional
                ? new[] { OnnxMetadata.ImagesInput, OnnxMetadata.TimestepsInput, OnnxMetadata.LabelsInput }
                : new[] { OnnxMetadata.ImagesInput, OnnxMetadata.TimestepsInput };
            var graphInputs = session.InputMetadata.Keys.ToHashSet(StringComparer.Ordinal);
            if (!graphInputs.SetEquals(inputNames))
                throw new InvalidDataException($"{path}: the graph's inputs are {string.Join(", ", graphInputs)}; a{(IsConditional ? " class-conditional" : "n unconditional")} " +
                                               $"model exported by Ddpm has {string.Join(", ", inputNames)}.");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"{path}: metadata '{OnnxMetadata.ClassNamesKey}' is not a JSON array of names: {e.Message}", e);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Opens an exported model. <paramref name="threads"/> sets ONNX Runtime's intra-op threads (0: its default, one per core).
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an ONNX model, or not one <c>ddpm export</c> wrote (its metadata is missing or malformed).</exception>
    public static OnnxDiffusionModel Load(string path, int threads = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model '{path}' does not exist.", path);
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be >= 0 (0: ONNX Runtime's default).");
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads };
        InferenceSession session;
        try
        {
            session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{path}: ONNX Runtime cannot load it as a model: {e.Message}", e);
        }
        try
        {
            var metadata = session.ModelMetadata.CustomMetadataMap;
            if (!metadata.TryGetValue(OnnxMetadata.FormatKey, out var format))
                throw new InvalidDataException($"{path}: an ONNX model, but not one ddpm export wrote (its metadata has no '{OnnxMetadata.FormatKey}').");
            if (format != OnnxMetadata.FormatValue)
                throw new InvalidDataException($"{path}: metadata format '{format}' is not the one this Ddpm.Onnx reads ('{OnnxMetadata.FormatValue}').");
            return new OnnxDiffusionModel(session, path, new Dictionary<string, string>(metadata, StringComparer.Ordinal));
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The file the model was loaded from.</summary>
    public string Path { get; }
    /// <summary>The model's catalog name, e.g. FashionMnistUNet.</summary>
    public string Name { get; }
    /// <summary>The spec file the model was declared in, e.g. fashion-mnist.yaml.</summary>
    public string SpecFile { get; }
    /// <summary>Image channels (1 or 3).</summary>
    public int Channels { get; }
    /// <summary>Image height and width.</summary>
    public int ImageSize { get; }
    /// <summary>What the network predicts: eps, x0 or v.</summary>
    public string Objective { get; }
    private global::Ddpm.Objective ObjectiveKind => Objective switch { "eps" => global::Ddpm.Objective.Eps, "x0" => global::Ddpm.Objective.X0, _ => global::Ddpm.Objective.V };
    /// <summary>Whether samplers clip the predicted x_0 to [-1, 1].</summary>
    public bool ClipX0 { get; }
    /// <summary>The quantile of dynamic thresholding (Saharia et al. 2022); 0 = off.</summary>
    public double DynamicThreshold { get; }
    /// <summary>The noise schedule: the betas of the file and every table derived from them, indexed by timestep 0..T-1.</summary>
    public ScheduleTables Schedule { get; }
    /// <summary>The schedule's kind as the spec spells it (linear, cosine, quadratic, sigmoid), or custom.</summary>
    public string ScheduleName { get; }
    /// <summary>A class-conditional model's classes (labels 0 .. Classes - 1, and Classes for the null class); 0 for an unconditional model.</summary>
    public int Classes { get; }
    /// <summary>Whether the model takes class labels (see <see cref="ChooseClasses"/>).</summary>
    public bool IsConditional => Classes > 0;
    /// <summary>A conditional model's class names, entry i naming label i; empty for an unconditional model.</summary>
    public IReadOnlyList<string> ClassNames { get; } = Array.Empty<string>();
    /// <summary>The share of training labels the model saw as the null class (guidance other than 1 needs it above 0).</summary>
    public double ClassDropout { get; }
    /// <summary>The declared guidance scale: what <see cref="ChooseClasses"/> uses unless told otherwise (1 for an unconditional model).</summary>
    public double Guidance { get; } = 1;

    /// <summary>Every metadata entry of the file (the <c>ddpm.*</c> keys, among them the run settings under <c>ddpm.config</c>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Values in one image: Channels * ImageSize * ImageSize.</summary>
    public int ImageLength => Channels * ImageSize * ImageSize;

    /// <summary>
    /// What to draw from a conditional model, from the words a user gives (as <c>ddpm sample --class</c> reads them for a
    /// checkpoint): a class name (any case; a unique prefix will do) or index; <c>all</c> for <paramref name="count"/> images
    /// in runs of one class each, so a grid has one row per class (the count rounds up to a multiple of the classes);
    /// <c>none</c> for the null class (unconditional, guidance 1).
    /// </summary>
    /// <param name="which">A class name or index, "all" or "none".</param>
    /// <param name="count">Images to draw.</param>
    /// <param name="guidance">The guidance scale; default <see cref="Guidance"/>.</param>
    /// <exception cref="InvalidOperationException">The model is not class-conditional.</exception>
    /// <exception cref="ArgumentException">No class matches, or the scale is out of range or needs a null class the model never learned.</exception>
    public OnnxClassCondition ChooseClasses(string which, int count, double? guidance = null)
    {
        if (!IsConditional) throw new InvalidOperationException($"{Name} is not class-conditional: it takes no class.");
        int[] labels = ClassChoice.Labels(Name, ClassNames, which, count, out bool nullClass);
        var condition = new OnnxClassCondition(labels, nullClass ? 1.0 : guidance ?? Guidance);
        Check(condition, labels.Length);
        return condition;
    }

    /// <summary>
    /// The one rule of conditional sampling, as the runtime's: a conditional model needs a class per image (it never silently
    /// draws from the null class), an unconditional one takes none.
    /// </summary>
    private void Check(OnnxClassCondition? condition, int count)
    {
        if (!IsConditional)
        {
            if (condition is not null) throw new ArgumentException($"{Name} is not class-conditional: it takes no class.", nameof(condition));
            return;
        }
        if (condition is null)
            throw new ArgumentException($"{Name} is class-conditional ({Classes} classes: {ClassChoice.Describe(ClassNames)}): say which class to draw " +
                                        "(ChooseClasses, or labels per image), or ask for the null class ('none') to draw unconditionally.", nameof(condition));
        ClassChoice.Check(Classes, ClassDropout, condition.Labels, count, condition.Guidance);
    }

    /// <summary>
    /// One model call: the network's prediction for <paramref name="images"/> ([batch, C, H, W], row-major) at
    /// <paramref name="timesteps"/> ([batch], each in 0..T-1), for a conditional model given <paramref name="labels"/>
    /// ([batch], 0 .. <see cref="Classes"/>; null: every image the null class, as the generated module's forward(x, t)).
    /// </summary>
    /// <returns>[batch, C, H, W], what the objective predicts.</returns>
    public float[] Predict(float[] images, long[] timesteps, long[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(timesteps);
        int batch = timesteps.Length;
        if (batch == 0 || images.Length != (long)batch * ImageLength)
            throw new ArgumentException($"Expected {batch} images of {Channels}x{ImageSize}x{ImageSize} ({(long)batch * ImageLength} values) for {batch} timesteps, got {images.Length} values.", nameof(images));
        foreach (long step in timesteps)
            if (step < 0 || step >= Schedule.Timesteps)
                throw new ArgumentOutOfRangeException(nameof(timesteps), step, $"timesteps must be in [0, {Schedule.Timesteps - 1}].");
        if (labels is not null)
        {
            if (!IsConditional) throw new ArgumentException($"{Name} is not class-conditional: it takes no labels.", nameof(labels));
            if (labels.Length != batch) throw new ArgumentException($"{labels.Length} labels for {batch} images; give one label per image.", nameof(labels));
            foreach (long label in labels)
                if (label < 0 || label > Classes)
                    throw new ArgumentOutOfRangeException(nameof(labels), label, $"labels must be in [0, {Classes}] ({Classes} = the null class).");
        }
        else if (IsConditional)
        {
            labels = new long[batch];
            Array.Fill(labels, Classes);
        }
        using var x = OrtValue.CreateTensorValueFromMemory(images, new long[] { batch, Channels, ImageSize, ImageSize });
        using var t = OrtValue.CreateTensorValueFromMemory(timesteps, new long[] { batch });
        using var l = labels is null ? null : OrtValue.CreateTensorValueFromMemory(labels, new long[] { batch });
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, inputNames, l is null ? new[] { x, t } : new[] { x, t, l }, outputNames);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>
    /// The prediction with classifier-free guidance (Ho and Salimans 2022): uncond + s (cond - uncond), the conditional and
    /// the null-class prediction from one call on a doubled batch, as the runtime's guided sampling computes it (s = 1: the
    /// conditional call alone; s = 0: the null class alone). Without labels, the plain prediction.
    /// </summary>
    internal float[] GuidedPredict(float[] images, long[] timesteps, long[]? labels, double guidance)
    {
        var call = ClassifierFreeGuidance.Call(guidance);
        if (labels is null || call == GuidanceCall.Conditional) return Predict(images, timesteps, labels);
        int batch = timesteps.Length;
        var nullLabels = new long[batch];
        Array.Fill(nullLabels, Classes);
        if (call == GuidanceCall.Unconditional) return Predict(images, timesteps, nullLabels);
        var both = Predict([.. images, .. images], [.. timesteps, .. timesteps], [.. labels, .. nullLabels]);
        var guided = new float[images.Length];
        ClassifierFreeGuidance.Combine(both.AsSpan(0, images.Length), both.AsSpan(images.Length), guidance, guided);
        return guided;
    }

    /// <summary>
    /// Draws <paramref name="count"/> images, <paramref name="batchSize"/> at a time, all from one noise source: a
    /// <see cref="GaussianNoise"/> seeded with <paramref name="seed"/> unless <paramref name="noise"/> is given.
    /// DDPM runs all T steps and ignores <paramref name="steps"/>; DDIM and DPM-Solver++ make <paramref name="steps"/> model calls.
    /// The default, SDE-DPM-Solver++(2M) at 20 calls, is the Ddpm runtime's default sampler (SpecDefaults.Sampler; a test holds
    /// the two together): it matched DDPM's 300 steps by FID on the one-epoch tutorial model (docs/quality.md).
    /// A class-conditional model needs <paramref name="condition"/> (see <see cref="ChooseClasses"/>): one label per image and
    /// the guidance scale, which costs one batched call per step on twice the images.
    /// </summary>
    /// <returns>[count, C, H, W] in the data range (about [-1, 1]), row-major.</returns>
    /// <param name="count">Images to draw, at least 1.</param>
    /// <param name="sampler">The sampler.</param>
    /// <param name="steps">Model calls of DDIM and DPM-Solver++, 1..T.</param>
    /// <param name="seed">Seeds the default noise source.</param>
    /// <param name="eta">DDIM's eta (&gt;= 0).</param>
    /// <param name="batchSize">Images per model call.</param>
    /// <param name="noise">Where the noise comes from; a <see cref="GaussianNoise"/> seeded with <paramref name="seed"/> when null.</param>
    /// <param name="drawn">Called after each batch with the number of images drawn so far.</param>
    /// <param name="condition">For a conditional model, the class of each image and the guidance scale.</param>
    /// <param name="progress">Told after every model call (on the sampling thread).</param>
    /// <param name="cancellationToken">Checked before every step: a cancelled draw stops within one model call with
    /// <see cref="OperationCanceledException"/>.</param>
    public float[] Sample(int count = 64, SamplerKind sampler = SamplerKind.DpmSolver2MSde, int steps = 20, long seed = 0, double eta = 0,
                          int batchSize = 64, IGaussianNoise? noise = null, Action<int>? drawn = null, OnnxClassCondition? condition = null,
                          IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be >= 1.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1.");
        if (sampler != SamplerKind.Ddpm && (steps < 1 || steps > Schedule.Timesteps))
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"steps must be in [1, {Schedule.Timesteps}].");
        if (!(eta >= 0)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must be >= 0.");
        Check(condition, count);
        noise ??= new GaussianNoise(seed);
        var scheduler = new SpanScheduler(Schedule, sampler, ObjectiveKind, ImageLength, ClipX0, DynamicThreshold, eta);
        var images = new float[(long)count * ImageLength];
        int finished = 0;
        var step = SamplingProgress.Hook(progress, cancellationToken, sampler == SamplerKind.Ddpm ? Schedule.Timesteps : steps, batchSize, count, () => finished);
        for (int done = 0; done < count;)
        {
            int n = Math.Min(batchSize, count - done);
            var labels = condition?.Labels.Skip(done).Take(n).Select(l => (long)l).ToArray();
            Draw(scheduler, n, steps, noise, labels, condition?.Guidance ?? 1.0, step is null ? null : (_, _) => step(), cancellationToken)
                .CopyTo(images, (long)done * ImageLength);
            finished = done += n;
            drawn?.Invoke(done);
        }
        return images;
    }

    /// <summary>One batch: the scheduler's loop, one (guided) model call and one step per timestep, from fresh noise.</summary>
    private float[] Draw(SpanScheduler scheduler, int n, int steps, IGaussianNoise noise, long[]? labels, double guidance,
                         Action<int, int>? progress, CancellationToken cancellationToken)
    {
        scheduler.SetTimesteps(steps);
        var x = new float[(long)n * ImageLength];
        noise.Fill(x);
        var timesteps = scheduler.Timesteps;
        var times = new long[n];
        for (int i = 0; i < timesteps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int t = timesteps[i];
            Array.Fill(times, t);
            x = scheduler.Step(GuidedPredict(x, times, labels, guidance), t, x, noise.Fill).Prev;
            progress?.Invoke(i + 1, timesteps.Count);
        }
        return x;
    }

    /// <summary>The schedule of a model file: as many alpha_bar as betas, at least one, each in (0, 1).</summary>
    private static void CheckSchedule(double[] betas, double[] alphasCumprod)
    {
        if (betas.Length == 0 || betas.Length != alphasCumprod.Length)
            throw new ArgumentException($"The schedule needs as many alpha_bar as betas, at least one: got {betas.Length} betas and {alphasCumprod.Length} alpha_bar.");
        for (int t = 0; t < betas.Length; t++)
            if (!(betas[t] > 0 && betas[t] < 1) || !(alphasCumprod[t] > 0 && alphasCumprod[t] < 1))
                throw new ArgumentException($"beta and alpha_bar must be in (0, 1); at t = {t} they are {betas[t]} and {alphasCumprod[t]}.");
    }

    /// <summary>
    /// Writes <paramref name="images"/> ([N, C, H, W] in [-1, 1], as <see cref="Sample"/> returns them) as a PNG grid, square-ish,
    /// small images doubled in size: the grid <c>ddpm sample</c> draws. Given the <paramref name="labels"/> the images were drawn
    /// with, a draw of every class in turn gets one row per class. The folder is created.
    /// </summary>
    public void SaveGrid(float[] images, string pngPath, IReadOnlyList<int>? labels = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentException.ThrowIfNullOrEmpty(pngPath);
        if (images.Length == 0 || images.Length % ImageLength != 0)
            throw new ArgumentException($"Expected a whole number of {Channels}x{ImageSize}x{ImageSize} images, got {images.Length} values.", nameof(images));
        int count = images.Length / ImageLength;
        GridLayout.Render(images, count, Channels, ImageSize, ImageSize, GridLayout.Columns(count, labels), scale: GridLayout.Scale(ImageSize)).SavePng(pngPath);
    }

    /// <summary>Releases ONNX Runtime's session.</summary>
    public void Dispose() => session.Dispose();
}
