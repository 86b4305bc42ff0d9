using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Evaluation;
using Ddpm.Imaging;
using Ddpm.Native;
using Ddpm.Training;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm eval`: how good are these samples? Draws images from a checkpoint, or reads images made elsewhere (a PNG grid,
/// a folder of images, a .npy array), and scores them against the data set's test split with its feature net
/// (FID, KID, precision, recall, class shares; docs/quality.md). `--compare a.json b.json` puts two results side by side
/// (from the same feature net only); `--train-feature-net` trains a data set's feature net and writes it.
/// </summary>
internal static class EvalCommand
{
    private const int DrawBatch = 250;

    /// <summary>
    /// The most images one evaluation draws: 50,000 is the usual FID sample; twice that is hours on a GPU and days on a CPU,
    /// and a larger number is more likely a typing slip than a plan.
    /// </summary>
    public const int MaxSamples = 100_000;

    public static Command Create(TextWriter output)
    {
        var input = new Argument<string?>("input")
        {
            Description = "A checkpoint (runs/<name>/checkpoints/last.ckpt), or images: a PNG grid, a folder of PNG/JPEG files, or a .npy array " +
                          "([N, H, W], [N, C, H, W] or [N, H, W, C]; uint8 levels or floats).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var dataset = new Option<string?>("--dataset") { Description = "The data set to compare with (default: the checkpoint's training data set; required for images)." };
        var samples = new Option<int>("--samples") { Description = $"Images to draw from a checkpoint, at most {MaxSamples:N0} (FID is comparable only at equal n; use 1000 or more).", DefaultValueFactory = _ => 1000 };
        var sampler = Options.Sampler();
        var steps = Options.SamplerSteps();
        var eta = new Option<double>("--eta") { Description = "DDIM eta, from 0 to 1: 0 is deterministic, 1 is DDPM-like noise.", DefaultValueFactory = _ => 0.0 };
        var seed = new Option<long>("--seed") { Description = "Seed of the starting noise and of KID's subsets.", DefaultValueFactory = _ => 0 };
        var weights = Options.Weights();
        var x0Limit = Options.X0Limit();
        var count = new Option<int?>("--count") { Description = "Score only the first N images of an image input (default: all)." };
        var range = new Option<string>("--range")
        {
            Description = "Value range of a float .npy: auto (0..255 if any value exceeds 2, else -1..1 if any is negative, else 0..1), -1..1, 0..1 or 0..255.",
            DefaultValueFactory = _ => "auto",
        };
        var json = new Option<string?>("--json") { Description = "Also write the scores as JSON to this file." };
        var saveSamples = new Option<string?>("--save-samples") { Description = "Also write the drawn images as a uint8 .npy [N, C, H, W] (checkpoint input only)." };
        var classOption = Options.Class();
        var guidance = Options.Guidance();
        var engine = Options.Engine();
        var compare = new Option<string[]>("--compare")
        {
            Description = "Print two results of --json side by side instead of scoring (ddpm eval --compare a.json b.json); refused when they come " +
                          "from different feature nets (weights_sha256), whose scores do not compare.",
            Arity = new ArgumentArity(2, 2),
            AllowMultipleArgumentsPerToken = true,
            HelpName = "a.json b.json",
        };
        var trainFeatureNet = new Option<bool>("--train-feature-net")
        {
            Description = $"Train the feature net of --dataset ({DescribeOptions(FeatureNetOptions.Default)}; minutes on a CPU) instead of scoring, " +
                          "and write it to the data set's cache (or to --out with its manifest). Data sets without a shipped net get theirs this way, or on first use.",
        };
        var netOut = new Option<string?>("--out")
        {
            Description = "With --train-feature-net: write the net to this .fnet file, and its manifest (data set, SHA-256, test accuracy, the command) beside it as .json.",
        };
        var command = new Command("eval", "Score sample quality against a data set: FID, KID, precision, recall and class shares.")
        {
            input, dataset, samples, sampler, steps, eta, seed, weights, x0Limit, count, range, json, saveSamples, classOption, guidance,
            compare, trainFeatureNet, netOut, engine,
        };
        Options.Between(samples, 2, MaxSamples);
        Options.AtLeast(steps, 1);
        Options.FiniteBetween(eta, 0, 1);
        Options.WholeNumber(seed);
        Options.AtLeast(count, 2);
        range.Validators.Add(r =>
        {
            string value = r.GetValueOrDefault<string>() ?? "auto";
            if (value is not ("auto" or "-1..1" or "0..1" or "0..255")) r.AddError($"--range must be auto, -1..1, 0..1 or 0..255, got '{Options.Echo(value)}'.");
        });

        command.SetAction(parse =>
        {
            // The two modes that score nothing take only their own options.
            Option[] scoring = [samples, sampler, steps, eta, seed, weights, x0Limit, count, range, json, saveSamples, classOption, guidance];
            if (Given(parse, compare) && parse.GetValue(compare) is [var first, var second])
            {
                RejectWith("--compare", parse, [input], [dataset, trainFeatureNet, netOut, .. scoring]);
                EvalComparison.Run(first, second, output);
                return DdpmCli.Ok;
            }
            if (parse.GetValue(trainFeatureNet))
            {
                RejectWith("--train-feature-net", parse, [input], scoring, $" (it trains with fixed options: {DescribeOptions(FeatureNetOptions.Default)})");
                string name = parse.GetValue(dataset) ?? throw new UsageException("--train-feature-net: say which data set with --dataset (for example --dataset fashion-mnist).");
                TrainFeatureNet(name, parse.GetValue(netOut), output);
                return DdpmCli.Ok;
            }
            if (Given(parse, netOut)) throw new UsageException("--out applies to --train-feature-net; scores go to --json.");
            string path = parse.GetValue(input)
                ?? throw new UsageException("ddpm eval needs a checkpoint or images to score (or --compare a.json b.json, or --train-feature-net --dataset NAME).");
            if (File.Exists(path) && Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"{path} is an ONNX model: ONNX models are sampled with ddpm sample {path}; " +
                                         "score the grid it writes with ddpm eval GRID.png --dataset NAME.");
            string? jsonOut = parse.GetValue(json), npyOut = parse.GetValue(saveSamples);
            if (jsonOut is not null) Options.CheckWritableFile(jsonOut, "--json", [path, npyOut]);
            if (npyOut is not null) Options.CheckWritableFile(npyOut, "--save-samples", [path, jsonOut]);
            var watch = Stopwatch.StartNew();
            var context = new List<KeyValuePair<string, object?>> { new("input", path) };
            string datasetName;
            QualityReport report;
            SampleQuality? quality = null;
            try
            {
                if (Directory.Exists(path) || IsImageFile(path))
                {
                    CheckImageInput(path); // before --dataset is asked for, or the data set loaded
                    datasetName = parse.GetValue(dataset) ?? throw new UsageException($"{path} holds images: say which data set they imitate with --dataset (for example --dataset fashion-mnist).");
                    // The images are read and checked before the feature net is loaded or trained (minutes on a fresh cache).
                    var data = LoadData(datasetName, output);
                    var images = ReadImages(path, data.Channels, data.ImageSize, parse.GetValue(range)!, parse.GetValue(count));
                    quality = Open(data, output);
                    context.Add(new("images", images.Count));
                    report = quality.Score(images, Seed(parse.GetValue(seed)));
                }
                else
                {
                    using var opened = Options.OpenCheckpoint(path, parse.GetValue(weights) ?? SamplingWeights.Unknown);
                    datasetName = parse.GetValue(dataset) ?? opened.Dataset
                        ?? throw new UsageException($"{path} does not record its training data set; pass --dataset.");
                    // Every option is checked against the model before the data set and its feature net are loaded.
                    var kind = parse.GetValue(sampler) ?? SpecDefaults.Sampler;
                    int timesteps = opened.Entry.Schedule.Timesteps;
                    int n = parse.GetValue(samples), modelCalls = Options.StepsFor(parse.GetValue(steps), timesteps);
                    if (kind != SamplerKind.Ddpm && modelCalls > timesteps)
                        throw new UsageException($"--steps {modelCalls} exceeds the schedule's {timesteps} timesteps.");
                    var condition = Options.ResolveClass(opened, parse.GetValue(classOption), parse.GetValue(guidance), n, balanced: true);
                    quality = Open(LoadData(datasetName, output), output);
                    string how = Options.DescribeSampler(kind, modelCalls, timesteps, parse.GetValue(eta));
                    var diffusion = Options.WithX0Limit(opened.Entry.Diffusion, parse.GetValue(x0Limit));
                    string limit = Options.DescribeX0Limit(diffusion.Options);
                    output.WriteLine($"drawing {n} images of {opened.Entry.Name} at step {opened.Step} ({how}, x0 limit {limit}, {Options.WeightsName(opened.Weights)} weights: {opened.WeightsReason})");
                    if (condition is not null)
                    {
                        output.WriteLine($"  by class: {Options.DescribeClass(condition, opened.ClassNames)}");
                        context.AddRange([new("class", parse.GetValue(classOption)), new("guidance", condition.Guidance)]);
                    }
                    var chosen = SamplingEngine.Choose(parse.GetValue(engine), opened, path, "cpu", "fp32", frames: false,
                                                       parse.GetResult(x0Limit) is { Implicit: false }, Math.Min(n, DrawBatch));
                    var drawWatch = Stopwatch.StartNew();
                    void Drawn(int drawn) => output.WriteLine($"  {drawn}/{n} drawn, {drawWatch.Elapsed.TotalSeconds:F0} s");
                    Tensor images;
                    if (chosen.Engine == SamplingEngine.Onnx)
                    {
                        output.WriteLine($"  on ONNX Runtime ({chosen.Reason})");
                        var onnxCondition = condition is null ? null : new Ddpm.Onnx.OnnxClassCondition(condition.Labels, condition.Guidance);
                        float[] drawnImages = SamplingEngine.SampleOnnx(SamplingEngine.ExportedGraph(path, opened), n, kind, modelCalls, parse.GetValue(eta),
                                                                        parse.GetValue(seed), onnxCondition, DrawBatch, Drawn);
                        images = tensor(drawnImages, opened.Entry.BatchShape(n));
                    }
                    else
                    {
                        output.WriteLine($"  on TorchSharp ({chosen.Reason})");
                        if (ConvolutionBackends.ChooseFor(opened.Module, "fp32", opened.Entry.ImageSize, opened.Entry.Channels,
                                                          ConvolutionBackends.Purpose.Sampling, "cpu") is string convolutions)
                            output.WriteLine($"  {convolutions}");
                        images = Sampling.Draw(opened.Module, diffusion, opened.Entry.BatchShape(1), n, kind, modelCalls, parse.GetValue(eta),
                                               parse.GetValue(seed), DrawBatch, Drawn, condition);
                    }
                    using var imagesOwner = images;
                    // Non-finite images would score as black ones: the draw stops here instead (exit 1).
                    Sampling.CheckFinite(images);
                    double drawSeconds = drawWatch.Elapsed.TotalSeconds;
                    if (parse.GetValue(saveSamples) is { } npy) SaveLevels(images, npy, output);
                    context.AddRange([new("model", opened.Entry.Name), new("step", opened.Step), new("weights", Options.WeightsName(opened.Weights)),
                                      new("sampler", Ddpm.Specs.SpecYaml.SamplerValues[(int)kind]), new("model_calls", kind == SamplerKind.Ddpm ? timesteps : modelCalls),
                                      new("eta", parse.GetValue(eta)), new("x0_limit", limit), new("seed", parse.GetValue(seed)), new("sampling_seconds", Math.Round(drawSeconds, 1)),
                                      new("engine", chosen.Engine)]);
                    // Only real classes are asked of the feature net: the null class asks for none.
                    var requested = condition is not null && condition.Labels.Any(l => l < opened.Conditioning!.Classes) ? condition.Labels : null;
                    report = quality.Score(images, Seed(parse.GetValue(seed)), requested);
                }
                output.Write(QualityTable.Render(report));
                output.WriteLine($"feature net: {quality.FeatureNetPath} (weights sha256 {quality.FeatureNet.WeightsSha256?[..12]})");
                context.Add(new("seconds", Math.Round(watch.Elapsed.TotalSeconds, 1)));
                if (parse.GetValue(json) is { } jsonPath)
                {
                    QualityJson.Write(jsonPath, report, quality.FeatureNet, context);
                    output.WriteLine($"wrote {jsonPath}");
                }
                return DdpmCli.Ok;
            }
            finally
            {
                quality?.Dispose();
            }
        });
        return command;
    }

    /// <summary>
    /// `--train-feature-net`: trains <paramref name="datasetName"/>'s feature net with the fixed options and writes it to
    /// <paramref name="outFile"/> with its manifest, or to the data set's cache (where evaluation finds it) when none is given.
    /// </summary>
    private static void TrainFeatureNet(string datasetName, string? outFile, TextWriter output)
    {
        if (outFile is not null)
        {
            if (!outFile.EndsWith(FeatureNetManifest.NetExtension, StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--out {Options.Echo(outFile)}: a feature net file ends in {FeatureNetManifest.NetExtension} (its manifest is written beside it as .json).");
            Options.CheckWritableFile(outFile, "--out");
            Options.CheckWritableFile(FeatureNetManifest.PathFor(outFile), "--out");
        }
        LabelledDataset data;
        try { data = LabelledDatasets.Load(datasetName, output.WriteLine); }
        catch (ArgumentException e) { throw new UsageException($"--dataset: {DdpmCli.Describe(e)}"); }
        var options = FeatureNetOptions.Default;
        var (net, info) = FeatureNetCache.Train(data, options, output.WriteLine);
        using (net)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"feature net: trained in {info.TrainSeconds:F0} s on {get_num_threads()} threads, test accuracy {info.TestAccuracy * 100:F2}%, weights sha256 {info.WeightsSha256}"));
            if (outFile is null)
            {
                string path = FeatureNetCache.PathFor(data);
                FeatureNetCache.Write(path, net, info);
                output.WriteLine($"wrote {path}");
                if (FeatureNetCatalog.Shipped.For(info.Fingerprint) is { } shipped)
                    output.WriteLine($"note: this data has a net shipped with ddpm ({shipped.File}, weights sha256 {shipped.WeightsSha256[..12]}); ddpm eval and " +
                                     "training.eval use that one, so that scores compare between machines.");
                return;
            }
            FeatureNetCache.Write(outFile, net, info);
            string command = $"ddpm eval --train-feature-net --dataset {Quote(datasetName)} --out {Quote(outFile.Replace('\\', '/'))}";
            var manifest = FeatureNetManifest.Describe(outFile, info, command);
            string manifestPath = FeatureNetManifest.PathFor(outFile);
            manifest.Write(manifestPath);
            output.WriteLine($"wrote {outFile} ({manifest.Bytes:N0} bytes, sha256 {manifest.Sha256}) and its manifest {manifestPath}");
        }
    }

    /// <summary>"4 epochs, batch 128, learning rate 0.002, seed 0".</summary>
    private static string DescribeOptions(FeatureNetOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"{o.Epochs} epochs, batch {o.BatchSize}, learning rate {o.LearningRate}, seed {o.Seed}");

    private static string Quote(string word) => word.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '$') ? $"'{word}'" : word;

    /// <summary>Whether <paramref name="option"/> was given on the command line (not just its default).</summary>
    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>A mode that takes none of <paramref name="options"/> (and no <paramref name="arguments"/>): one usage line naming the first given.</summary>
    private static void RejectWith(string mode, ParseResult parse, Argument[] arguments, Option[] options, string why = "")
    {
        foreach (var argument in arguments)
            if (parse.GetResult(argument) is { Tokens.Count: > 0 } given)
                throw new UsageException($"{mode} takes no {argument.Name} to score (got '{Options.Echo(given.Tokens[0].Value)}').");
        foreach (var option in options)
            if (Given(parse, option))
                throw new UsageException($"{option.Name} does not apply to {mode}{why}.");
    }

    /// <summary>The labelled data set to score against; an unknown name or one without labels is one usage line.</summary>
    private static LabelledDataset LoadData(string dataset, TextWriter output)
    {
        try { return LabelledDatasets.Load(dataset, output.WriteLine).Validated(); }
        catch (ArgumentException e) { throw new UsageException($"--dataset: {DdpmCli.Describe(e)}"); }
    }

    /// <summary>Scoring against <paramref name="data"/>: its feature net (shipped, cached, or trained now) and reference statistics.</summary>
    private static SampleQuality Open(LabelledDataset data, TextWriter output)
    {
        try { return new SampleQuality(data, output.WriteLine); }
        catch (ArgumentException e) { throw new UsageException($"--dataset: {DdpmCli.Describe(e)}"); }
    }

    private static int Seed(long seed) => (int)(seed & int.MaxValue);

    private static bool IsImageFile(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".npy" or ".png" or ".jpg" or ".jpeg";

    /// <summary>
    /// Reads an image input as 8-bit images of the data set's shape: a file that is not images of that shape, claims more
    /// pixels than ddpm decodes (<see cref="ImageLimits"/>) or holds NaN or infinite values is one usage line.
    /// </summary>
    internal static ImageSet ReadImages(string path, int channels, int size, string range, int? count)
    {
        try { return ReadImagesOf(path, channels, size, range, count); }
        catch (InvalidDataException e) { throw new UsageException(DdpmCli.Describe(e)); }
    }

    /// <summary>An image input exists: a file, or a folder that holds PNG or JPEG images (a folder is read as one).</summary>
    private static void CheckImageInput(string path)
    {
        if (!Directory.Exists(path))
        {
            if (!File.Exists(path)) throw new UsageException($"'{path}' does not exist.");
        }
        else if (ImageFolder.FindImages(path).Count == 0)
            throw new UsageException($"{path}: no PNG or JPEG images in this folder.");
    }

    private static ImageSet ReadImagesOf(string path, int channels, int size, string range, int? count)
    {
        ImageSet images;
        CheckImageInput(path);
        if (Directory.Exists(path))
            images = ImageFolder.Load(path, size, channels);
        else if (Path.GetExtension(path).Equals(".npy", StringComparison.OrdinalIgnoreCase))
            images = FromNpy(path, channels, size, range);
        else
            images = ImageGridReader.Read(path, size, channels);
        if (count is int n)
        {
            if (n > images.Count) throw new UsageException($"--count {n}: {path} holds only {images.Count} images.");
            images = new ImageSet(images.Pixels.AsSpan(0, n * images.ImageBytes).ToArray(), n, images.Channels, images.Height, images.Width);
        }
        return images;
    }

    /// <summary>A .npy of images as 8-bit levels: [N, H, W] (one channel), [N, C, H, W] or [N, H, W, C].</summary>
    internal static ImageSet FromNpy(string path, int channels, int size, string range)
    {
        var array = Npy.Read(path, shape =>
        {
            // The image size from the header, under the one limit of every image reader: [N, H, W], [N, C, H, W] or [N, H, W, C].
            if (shape.Length == 3) ImageLimits.Check(path, shape[2], shape[1]);
            else if (shape.Length == 4) ImageLimits.Check(path, shape[1] <= 4 ? shape[3] : shape[2], shape[1] <= 4 ? shape[2] : shape[1]);
        });
        long[] s = array.Shape;
        bool channelsFirst = s.Length == 4 && s[1] == channels && s[2] == size && s[3] == size;
        bool channelsLast = s.Length == 4 && s[3] == channels && s[1] == size && s[2] == size;
        bool plain = s.Length == 3 && channels == 1 && s[1] == size && s[2] == size;
        if (!(channelsFirst || channelsLast || plain))
            throw new UsageException($"{path}: an array of shape ({string.Join(", ", s)}) is not images of this data set " +
                                     $"({(channels == 1 ? $"[N, {size}, {size}], " : "")}[N, {channels}, {size}, {size}] or [N, {size}, {size}, {channels}]).");
        int n = checked((int)s[0]), bytesPerImage = channels * size * size;
        var values = array.Values;
        // NaN or infinite values would become black or white pixels and score as if they were images.
        long bad = 0;
        foreach (double v in values) if (!double.IsFinite(v)) bad++;
        if (bad > 0)
            throw new UsageException($"{path}: {bad:N0} of its {values.LongLength:N0} values are NaN or infinite; these are not images (was the model that drew them diverging?).");
        (double offset, double factor) = Levels(array, range, path);
        var pixels = new byte[(long)n * bytesPerImage];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        long source = channelsLast ? (((long)i * size + y) * size + x) * channels + c : (((long)i * channels + c) * size + y) * size + x;
                        double v = (values[source] + offset) * factor;
                        pixels[(long)i * bytesPerImage + (c * size + y) * size + x] = double.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(Math.Floor(v + 0.5), 0, 255);
                    }
        return new ImageSet(pixels, n, channels, size, size);
    }

    /// <summary>How values map to levels 0..255: level = (value + offset) * factor.</summary>
    private static (double Offset, double Factor) Levels(Npy.NpyArray array, string range, string path)
    {
        if (array.DType == "u1")
        {
            if (range is not ("auto" or "0..255")) throw new UsageException($"{path} holds uint8 levels; --range {range} does not apply.");
            return (0, 1);
        }
        if (range == "auto")
        {
            double min = double.PositiveInfinity, max = double.NegativeInfinity;
            foreach (double v in array.Values)
                if (double.IsFinite(v)) { min = Math.Min(min, v); max = Math.Max(max, v); }
            range = max > 2 ? "0..255" : min < 0 ? "-1..1" : "0..1";
        }
        return range switch
        {
            "-1..1" => (1, 127.5),
            "0..1" => (0, 255),
            _ => (0, 1),
        };
    }

    /// <summary>Writes [-1, 1] images as the uint8 levels a PNG would hold, [N, C, H, W].</summary>
    private static void SaveLevels(Tensor images, string path, TextWriter output)
    {
        using var scope = NewDisposeScope();
        var levels = ImageLevels.ToLevels(images).to(ScalarType.Byte).contiguous();
        Npy.Write(path, levels.shape, levels.data<byte>().ToArray());
        output.WriteLine($"wrote {path}");
    }
}
