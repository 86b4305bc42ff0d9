using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Models;
using Ddpm.Native;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>`ddpm bench [spec]`: end-to-end training and sampling figures for this machine, in about a minute; a table, and JSON on request.</summary>
internal static class BenchCommand
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    /// <summary>The version of the JSON report's layout; raised when a key changes meaning or is removed.</summary>
    public const int SchemaVersion = 1;

    public static Command Create(TextWriter output)
    {
        var target = new Argument<string>("spec") { Description = "A YAML spec or compiled model name.", DefaultValueFactory = _ => "FashionMnistUNet" };
        var batch = new Option<int>("--batch-size") { Description = "Training batch size.", DefaultValueFactory = _ => 128 };
        var sampleBatch = new Option<int>("--sample-batch") { Description = "Images per sampling step.", DefaultValueFactory = _ => 64 };
        var steps = new Option<int>("--steps") { Description = "Measured training steps (after 2 warm-up steps).", DefaultValueFactory = _ => 10 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file (numbers as numbers, units in the key names)." };
        var precision = Options.Precision();
        var device = Options.Device();
        var allReduce = new Option<bool>("--allreduce")
        {
            Description = "Instead, under mpirun -np N: time the data-parallel gradient allreduce of this model's parameters (--steps times).",
        };
        var command = new Command("bench", "Measure training and sampling speed and memory on this machine.") { target, batch, sampleBatch, steps, json, precision, device, allReduce };
        Options.AtLeast(batch, 1);
        Options.AtLeast(sampleBatch, 1);
        Options.AtLeast(steps, 1);
        command.SetAction(parse =>
        {
            var resolved = ModelResolver.Resolve(parse.GetValue(target)!);
            if (parse.GetValue(allReduce))
                return DataParallelRun.Run(Console.Error, group => DataParallelRun.BenchAllReduce(group, resolved.Entry, parse.GetValue(steps), output));
            if (parse.GetValue(json) is string jsonFile) Options.CheckWritableFile(jsonFile, "--json");
            string deviceName = Options.ResolveDevice(parse.GetValue(device));
            string computePrecision = parse.GetValue(precision) ?? "fp32";
            Options.CheckPrecisionOnDevice(computePrecision, deviceName);
            var report = Measure(resolved, parse.GetValue(batch), parse.GetValue(sampleBatch), parse.GetValue(steps), computePrecision, deviceName);
            foreach (var (name, value) in report.Table())
                output.WriteLine($"{name,-28} {value}");
            if (parse.GetValue(json) is string path)
            {
                File.WriteAllText(path, JsonSerializer.Serialize(report, IndentedJson));
                output.WriteLine($"wrote {path}");
            }
            return DdpmCli.Ok;
        });
        return command;
    }

    private static BenchReport Measure(ResolvedModel resolved, int batchSize, int sampleBatch, int steps, string precision, string deviceName)
    {
        var entry = resolved.Entry;
        var spec = resolved.Training;
        spec.BatchSize = batchSize;
        spec.Steps = steps + 2;
        spec.SampleEvery = 0;
        spec.CheckpointEvery = 0;
        spec.Eval.Every = 0;
        spec.Precision = precision;
        var device = new Device(deviceName);
        // Synthetic data of the model's shape: the figures are the model's, not the disk's.
        var data = Datasets.Synthetic(entry.Channels, entry.ImageSize, Math.Max(batchSize * 4, 256));
        manual_seed(spec.Seed);
        using var model = entry.CreateModel();
        model.to(device);
        var convolutions = device.type == DeviceType.CPU
            ? ConvolutionBackends.Choose(model, precision == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32, entry.ImageSize, entry.Channels, ConvolutionBackends.Purpose.Training, createCopy: entry.CreateModel)
            : null;
        var diffusion = entry.Diffusion;
        var times = new List<double>();
        var watch = new Stopwatch();
        int effectiveBatch;
        using (var trainer = new Trainer(model, diffusion, Trainer.CreateLoader(data, spec), spec, entry.CreateModel))
        {
            effectiveBatch = Trainer.CreateLoader(data, spec).BatchSize;
            for (int i = 0; i < steps + 2; i++)
            {
                watch.Restart();
                trainer.TrainStep(); // reads the loss back, so the step has finished on the device when it returns
                if (i >= 2) times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }
        var (trainRss, trainPeak) = Allocator.ResidentMemory();

        var samplingTimes = new List<double>();
        model.eval();
        var sampler = PrecisionCast.Wrap(model, precision);
        using (no_grad())
        using (var generator = new Generator(1))
        {
            var x = Devices.Randn(entry.BatchShape(sampleBatch), ScalarType.Float32, device, generator);
            for (int i = 0; i < 5; i++)
            {
                watch.Restart();
                var next = diffusion.PSample(sampler, x, entry.Schedule.Timesteps - 1 - i, generator);
                if (device.type == DeviceType.CUDA) cuda.synchronize(device); // time the work, not its queueing
                x.Dispose();
                x = next;
                if (i >= 1) samplingTimes.Add(watch.Elapsed.TotalMilliseconds);
            }
            x.Dispose();
        }
        double? onnxSampleMs = device.type == DeviceType.CPU && precision == "fp32" ? OnnxCallMilliseconds(model, entry, sampleBatch) : null;
        double sgemmGflops = SgemmPeakGflops(device);
        var (_, peak) = Allocator.ResidentMemory();
        double trainMs = Median(times), sampleMs = Median(samplingTimes);
        return new BenchReport
        {
            Model = entry.Name,
            Parameters = entry.ParameterCount,
            Device = deviceName,
            CudaAvailable = cuda.is_available(),
            Precision = precision,
            Threads = get_num_threads(),
            TrainBatchSize = effectiveBatch,
            SampleBatchSize = sampleBatch,
            TrainStepsMeasured = times.Count,
            SamplingStepsMeasured = samplingTimes.Count,
            Timesteps = entry.Schedule.Timesteps,
            Cpu = new CpuReport { Name = CpuInfo.Name(), Features = CpuInfo.Features() },
            Allocator = Allocator.Status,
            Denormals = Denormals.AreFlushed() ? "flushed to zero (FTZ, DAZ)" : "kept",
            OneDnn = OneDnn.Status,
            Kernels = new KernelReport
            {
                Convolutions = convolutions?.Line ?? $"the {deviceName} device's own kernels",
                OneDnnConvolutions = convolutions?.OneDnn ?? false,
                ConvolutionShapes = convolutions?.Shapes.Count ?? 0,
                OneDnnFailedShapes = convolutions?.Failed.Select(s => s.Key(precision == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32)).ToList() ?? [],
                CheckSeconds = Round(convolutions?.CheckSeconds ?? 0),
            },
            Threading = new ThreadingReport
            {
                OmpWaitPolicy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(libgomp's default: ACTIVE)",
                IntraOpThreads = get_num_threads(),
                InterOpThreads = get_num_interop_threads(),
            },
            TrainStepMs = Round(trainMs),
            TrainImagesPerSecond = Round(effectiveBatch * 1000 / trainMs),
            SamplingStepMs = Round(sampleMs),
            DdpmSamplingSecondsEstimate = Math.Round(sampleMs * entry.Schedule.Timesteps / 1000, 3), // a small model with few timesteps takes milliseconds
            RssAfterTrainingMib = trainRss >> 20,
            TrainingPeakRssMib = trainPeak >> 20,
            PeakRssMib = peak >> 20,
            OnnxSamplingCallMs = onnxSampleMs is double ms ? Round(ms) : null,
            SgemmPeakGflops = Round(sgemmGflops),
        };
    }

    /// <summary>The same network's call on ONNX Runtime (exported with these weights to a temporary file), the faster of 3 after a warm-up.</summary>
    private static double OnnxCallMilliseconds(nn.Module<Tensor, Tensor, Tensor> model, ModelEntry entry, int batch)
    {
        string folder = Directory.CreateTempSubdirectory("ddpm-bench-").FullName;
        try
        {
            string path = Path.Combine(folder, "model.onnx");
            Ddpm.Interop.OnnxExport.Write(model, entry, path);
            using var onnx = Ddpm.Onnx.OnnxDiffusionModel.Load(path);
            var images = new float[(long)batch * onnx.ImageLength];
            new Ddpm.Onnx.GaussianNoise(1).Fill(images);
            var timesteps = Enumerable.Repeat((long)entry.Schedule.Timesteps - 1, batch).ToArray();
            var best = double.MaxValue;
            for (int i = 0; i < 4; i++)
            {
                var watch = Stopwatch.StartNew();
                _ = onnx.Predict(images, timesteps);
                if (i > 0) best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
            }
            return best;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The machine's float32 matrix-multiply peak through libtorch: a 2048² by 2048² product, the best of 5 after 2 warm-ups.</summary>
    private static double SgemmPeakGflops(Device device)
    {
        const int n = 2048;
        using var scope = NewDisposeScope();
        var a = randn(new long[] { n, n }, device: device);
        var b = randn(new long[] { n, n }, device: device);
        double best = double.MaxValue;
        for (int i = 0; i < 7; i++)
        {
            var watch = Stopwatch.StartNew();
            using var product = mm(a, b);
            if (device.type == DeviceType.CUDA) cuda.synchronize(device);
            else _ = product[0, 0].item<float>();
            if (i >= 2) best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    private static double Round(double value) => Math.Round(value, 1);

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}

/// <summary>
/// What `ddpm bench --json` writes: the measured figures as numbers with their units in the key names, and the context
/// they were measured in. <see cref="BenchCommand.SchemaVersion"/> says which layout this is.
/// </summary>
internal sealed record BenchReport
{
    [JsonPropertyName("schema_version")] public int SchemaVersion { get; init; } = BenchCommand.SchemaVersion;
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("parameters")] public required long Parameters { get; init; }
    [JsonPropertyName("device")] public required string Device { get; init; }
    [JsonPropertyName("cuda_available")] public required bool CudaAvailable { get; init; }
    [JsonPropertyName("precision")] public required string Precision { get; init; }
    [JsonPropertyName("threads")] public required int Threads { get; init; }
    [JsonPropertyName("train_batch_size")] public required int TrainBatchSize { get; init; }
    [JsonPropertyName("sample_batch_size")] public required int SampleBatchSize { get; init; }
    [JsonPropertyName("train_steps_measured")] public required int TrainStepsMeasured { get; init; }
    [JsonPropertyName("sampling_steps_measured")] public required int SamplingStepsMeasured { get; init; }
    [JsonPropertyName("timesteps")] public required int Timesteps { get; init; }
    [JsonPropertyName("cpu")] public required CpuReport Cpu { get; init; }
    [JsonPropertyName("allocator")] public required string Allocator { get; init; }
    [JsonPropertyName("denormals")] public required string Denormals { get; init; }
    [JsonPropertyName("onednn")] public required string OneDnn { get; init; }
    /// <summary>Which convolution kernels ran and why (the check of Native/ConvolutionBackends.cs).</summary>
    [JsonPropertyName("kernels")] public required KernelReport Kernels { get; init; }
    [JsonPropertyName("threading")] public required ThreadingReport Threading { get; init; }
    /// <summary>Median wall time of one training step (after 2 warm-up steps).</summary>
    [JsonPropertyName("train_step_ms")] public required double TrainStepMs { get; init; }
    [JsonPropertyName("train_images_per_second")] public required double TrainImagesPerSecond { get; init; }
    /// <summary>Median wall time of one DDPM sampling step (after 1 warm-up step).</summary>
    [JsonPropertyName("sampling_step_ms")] public required double SamplingStepMs { get; init; }
    /// <summary>All T sampling steps at that median.</summary>
    [JsonPropertyName("ddpm_sampling_seconds_estimate")] public required double DdpmSamplingSecondsEstimate { get; init; }
    [JsonPropertyName("rss_after_training_mib")] public required long RssAfterTrainingMib { get; init; }
    [JsonPropertyName("training_peak_rss_mib")] public required long TrainingPeakRssMib { get; init; }
    [JsonPropertyName("peak_rss_mib")] public required long PeakRssMib { get; init; }
    /// <summary>One call of the same network (same batch as a sampling step) on ONNX Runtime; null off the CPU or in bf16.</summary>
    [JsonPropertyName("onnx_sampling_call_ms")] public double? OnnxSamplingCallMs { get; init; }
    /// <summary>A 2048² float32 matrix product through libtorch, best of 5: the machine's practical fp32 peak for the figures above.</summary>
    [JsonPropertyName("sgemm_peak_gflops")] public required double SgemmPeakGflops { get; init; }

    /// <summary>The human table: the same figures, rounded and with their units.</summary>
    public IEnumerable<(string Name, string Value)> Table()
    {
        static string F(double v) => v.ToString("F0", CultureInfo.InvariantCulture);
        yield return ("model", $"{Model} ({Parameters:N0} parameters)");
        yield return ("device", Device == "cpu" && CudaAvailable ? "cpu (cuda available)" : Device);
        yield return ("cpu", $"{Cpu.Name} ({string.Join(' ', Cpu.Features)})");
        yield return ("threads", Threads.ToString(CultureInfo.InvariantCulture));
        yield return ("precision", Precision);
        yield return ("allocator", Allocator);
        yield return ("denormals", Denormals);
        yield return ("libtorch set-up", OneDnn);
        yield return ("convolutions", Kernels.Convolutions.Replace("convolutions: ", ""));
        yield return ("OpenMP", $"{Threading.IntraOpThreads} intra-op, {Threading.InterOpThreads} inter-op threads, OMP_WAIT_POLICY {Threading.OmpWaitPolicy}");
        yield return ($"train step, batch {TrainBatchSize}", $"{F(TrainStepMs)} ms median of {TrainStepsMeasured} ({F(TrainImagesPerSecond)} img/s)");
        yield return ($"sampling step, batch {SampleBatchSize}", $"{F(SamplingStepMs)} ms median of {SamplingStepsMeasured}");
        yield return ($"DDPM {Timesteps} steps, est.", $"{F(DdpmSamplingSecondsEstimate)} s for {SampleBatchSize} images");
        if (OnnxSamplingCallMs is double onnx)
            yield return ($"ONNX Runtime call, batch {SampleBatchSize}", $"{F(onnx)} ms (best of 3)");
        yield return ("sgemm peak (2048², fp32)", $"{F(SgemmPeakGflops)} GFLOP/s");
        yield return ("RSS after training", $"{RssAfterTrainingMib} MiB");
        yield return ("peak RSS", $"{PeakRssMib} MiB (training peak {TrainingPeakRssMib} MiB)");
    }
}

/// <summary>The kernels of a bench report.</summary>
internal sealed record KernelReport
{
    [JsonPropertyName("convolutions")] public required string Convolutions { get; init; }
    [JsonPropertyName("onednn_convolutions")] public required bool OneDnnConvolutions { get; init; }
    [JsonPropertyName("convolution_shapes")] public required int ConvolutionShapes { get; init; }
    [JsonPropertyName("onednn_failed_shapes")] public required IReadOnlyList<string> OneDnnFailedShapes { get; init; }
    /// <summary>Seconds spent checking shapes that were not in the kernel cache (0 when all were).</summary>
    [JsonPropertyName("check_seconds")] public required double CheckSeconds { get; init; }
}

/// <summary>The thread settings of a bench report.</summary>
internal sealed record ThreadingReport
{
    [JsonPropertyName("omp_wait_policy")] public required string OmpWaitPolicy { get; init; }
    [JsonPropertyName("intra_op_threads")] public required int IntraOpThreads { get; init; }
    [JsonPropertyName("inter_op_threads")] public required int InterOpThreads { get; init; }
}

/// <summary>The processor of a bench report.</summary>
internal sealed record CpuReport
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("features")] public required IReadOnlyList<string> Features { get; init; }
}
