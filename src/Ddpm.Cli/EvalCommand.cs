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
/// (FID, KID, precision, recall, class shares; docs/quality.md).
/// </summary>
internal static class EvalCommand
{
    private const int DrawBatch = 250;

    public static Command Create(TextWriter output)
    {
        var input = new Argument<string>("input")
        {
            Description = "A checkpoint (runs/<name>/checkpoints/last.ckpt), or images: a PNG grid, a folder of PNG/JPEG files, or a .npy array " +
                          "([N, H, W], [N, C, H, W] or [N, H, W, C]; uint8 levels or floats).",
        };
        var dataset = new Option<string?>("--dataset") { Description = "The data set to compare with (default: the checkpoint's training data set; required for images)." };
        var samples = new Option<int>("--samples") { Description = "Images to draw from a checkpoint (FID is comparable only at equal n; use 1000 or more).", DefaultValueFactory = _ => 1000 };
        var sampler = Options.Sampler(SamplerKind.Ddpm);
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
        var command = new Command("eval", "Score sample quality against a data set: FID, KID, precision, recall and class shares.")
        {
            input, dataset, samples, sampler, steps, eta, seed, weights, x0Limit, count, range, json, saveSamples, classOption, guidance, engine,
        };
        Options.AtLeast(samples, 2);
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
            string path = parse.GetValue(input)!;
            if (parse.GetValue(json) is { } jsonFile) Options.CheckWritableFile(jsonFile, "--json");
            if (parse.GetValue(saveSamples) is { } npyFile) Options.CheckWritableFile(npyFile, "--save-samples");
            var watch = Stopwatch.StartNew();
            var context = new List<KeyValuePair<string, object?>> { new("input", path) };
            string datasetName;
            QualityReport report;
            SampleQuality? quality = null;
            try
            {
                if (Directory.Exists(path) || IsImageFile(path))
                {
                    datasetName = parse.GetValue(dataset) ?? throw new UsageException($"{path} holds images: say which data set they imitate with --dataset (for example --dataset fashion-mnist).");
                    quality = Open(datasetName, output);
                    var images = ReadImages(path, quality, parse.GetValue(range)!, parse.GetValue(count));
                    context.Add(new("images", images.Count));
                    report = quality.Score(images, Seed(parse.GetValue(seed)));
                }
                else
                {
                    using var opened = Options.OpenCheckpoint(path, parse.GetValue(weights) ?? SamplingWeights.Unknown);
                    datasetName = parse.GetValue(dataset) ?? opened.Dataset
                        ?? throw new UsageException($"{path} does not record its training data set; pass --dataset.");
                    quality = Open(datasetName, output);
                    var kind = parse.GetValue(sampler);
                    int n = parse.GetValue(samples), modelCalls = parse.GetValue(steps);
                    int timesteps = opened.Entry.Schedule.Timesteps;
                    if (kind != SamplerKind.Ddpm && modelCalls > timesteps)
                        throw new UsageException($"--steps {modelCalls} exceeds the schedule's {timesteps} timesteps.");
                    string how = Options.DescribeSampler(kind, modelCalls, timesteps, parse.GetValue(eta));
                    var diffusion = Options.WithX0Limit(opened.Entry.Diffusion, parse.GetValue(x0Limit));
                    string limit = Options.DescribeX0Limit(diffusion.Options);
                    output.WriteLine($"drawing {n} images of {opened.Entry.Name} at step {opened.Step} ({how}, x0 limit {limit}, {Options.WeightsName(opened.Weights)} weights: {opened.WeightsReason})");
                    var condition = Options.ResolveClass(opened, parse.GetValue(classOption), parse.GetValue(guidance), n, balanced: true);
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

    private static SampleQuality Open(string dataset, TextWriter output)
    {
        try { return SampleQuality.Create(dataset, output.WriteLine); }
        catch (ArgumentException e) { throw new UsageException($"--dataset: {DdpmCli.Describe(e)}"); }
    }

    private static int Seed(long seed) => (int)(seed & int.MaxValue);

    private static bool IsImageFile(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".npy" or ".png" or ".jpg" or ".jpeg";

    /// <summary>Reads an image input as 8-bit images of the data set's shape.</summary>
    internal static ImageSet ReadImages(string path, SampleQuality quality, string range, int? count)
    {
        int channels = quality.Channels, size = quality.ImageSize;
        ImageSet images;
        if (Directory.Exists(path))
        {
            if (ImageFolder.FindImages(path).Count == 0) throw new UsageException($"{path}: no PNG or JPEG images in this folder.");
            images = ImageFolder.Load(path, size, channels);
        }
        else if (!File.Exists(path))
            throw new UsageException($"'{path}' does not exist.");
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
        var array = Npy.Read(path);
        long[] s = array.Shape;
        bool channelsFirst = s.Length == 4 && s[1] == channels && s[2] == size && s[3] == size;
        bool channelsLast = s.Length == 4 && s[3] == channels && s[1] == size && s[2] == size;
        bool plain = s.Length == 3 && channels == 1 && s[1] == size && s[2] == size;
        if (!(channelsFirst || channelsLast || plain))
            throw new UsageException($"{path}: an array of shape ({string.Join(", ", s)}) is not images of this data set " +
                                     $"({(channels == 1 ? $"[N, {size}, {size}], " : "")}[N, {channels}, {size}, {size}] or [N, {size}, {size}, {channels}]).");
        int n = checked((int)s[0]), bytesPerImage = channels * size * size;
        var values = array.Values;
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
