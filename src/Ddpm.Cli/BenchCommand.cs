using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Native;
using Ddpm.Training;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>`ddpm bench [spec]`: end-to-end training and sampling figures for this machine, in about a minute.</summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output)
    {
        var target = new Argument<string>("spec") { Description = "A YAML spec or compiled model name.", DefaultValueFactory = _ => "FashionMnistUNet" };
        var batch = new Option<int>("--batch-size") { Description = "Training batch size.", DefaultValueFactory = _ => 128 };
        var sampleBatch = new Option<int>("--sample-batch") { Description = "Images per sampling step.", DefaultValueFactory = _ => 64 };
        var steps = new Option<int>("--steps") { Description = "Measured training steps (after 2 warm-up steps).", DefaultValueFactory = _ => 10 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };
        var precision = Options.Precision();
        var command = new Command("bench", "Measure training and sampling speed and memory on this machine.") { target, batch, sampleBatch, steps, json, precision };
        Options.AtLeast(batch, 1);
        Options.AtLeast(sampleBatch, 1);
        Options.AtLeast(steps, 1);
        command.SetAction(parse =>
        {
            var resolved = ModelResolver.Resolve(parse.GetValue(target)!);
            if (parse.GetValue(json) is string jsonFile) Options.CheckWritableFile(jsonFile, "--json");
            var figures = Measure(resolved, parse.GetValue(batch), parse.GetValue(sampleBatch), parse.GetValue(steps), parse.GetValue(precision) ?? "fp32");
            foreach (var (name, value) in figures) output.WriteLine($"{name,-28} {value}");
            if (parse.GetValue(json) is string path)
            {
                File.WriteAllText(path, JsonSerializer.Serialize(figures.ToDictionary(f => f.Name, f => f.Value), new JsonSerializerOptions { WriteIndented = true }));
                output.WriteLine($"wrote {path}");
            }
            return DdpmCli.Ok;
        });
        return command;
    }

    private static List<(string Name, string Value)> Measure(ResolvedModel resolved, int batchSize, int sampleBatch, int steps, string precision)
    {
        var entry = resolved.Entry;
        var spec = resolved.Training;
        spec.BatchSize = batchSize;
        spec.Steps = steps + 2;
        spec.SampleEvery = 0;
        spec.CheckpointEvery = 0;
        spec.Precision = precision;
        // Synthetic data of the model's shape: the figures are the model's, not the disk's.
        var data = Datasets.Synthetic(entry.Channels, entry.ImageSize, Math.Max(batchSize * 4, 256));
        manual_seed(spec.Seed);
        using var model = entry.CreateModel();
        var diffusion = entry.Diffusion;
        var times = new List<double>();
        var watch = new Stopwatch();
        using (var trainer = new Trainer(model, diffusion, Trainer.CreateLoader(data, spec), spec, entry.CreateModel))
        {
            for (int i = 0; i < steps + 2; i++)
            {
                watch.Restart();
                trainer.TrainStep();
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
            var x = randn(entry.BatchShape(sampleBatch), generator: generator);
            for (int i = 0; i < 5; i++)
            {
                watch.Restart();
                var next = diffusion.PSample(sampler, x, entry.Schedule.Timesteps - 1 - i, generator);
                x.Dispose();
                x = next;
                if (i >= 1) samplingTimes.Add(watch.Elapsed.TotalMilliseconds);
            }
            x.Dispose();
        }
        var (_, peak) = Allocator.ResidentMemory();
        double trainMs = Median(times), sampleMs = Median(samplingTimes);
        static string F(double v) => v.ToString("F0", CultureInfo.InvariantCulture);
        return new()
        {
            ("model", $"{entry.Name} ({entry.ParameterCount:N0} parameters)"),
            ("device", cuda.is_available() ? "cuda available (measured on cpu)" : "cpu"),
            ("threads", get_num_threads().ToString(CultureInfo.InvariantCulture)),
            ("precision", precision),
            ("allocator", Allocator.Status),
            ("denormals", Denormals.AreFlushed() ? "flushed to zero (FTZ, DAZ)" : "kept"),
            ("convolutions", OneDnn.Status),
            ($"train step, batch {batchSize}", $"{F(trainMs)} ms median of {steps} ({F(batchSize * 1000 / trainMs)} img/s)"),
            ($"sampling step, batch {sampleBatch}", $"{F(sampleMs)} ms median of {samplingTimes.Count}"),
            ($"DDPM {entry.Schedule.Timesteps} steps, est.", $"{sampleMs * entry.Schedule.Timesteps / 1000:F0} s for {sampleBatch} images"),
            ("RSS after training", $"{trainRss >> 20} MiB"),
            ("peak RSS", $"{peak >> 20} MiB (training peak {trainPeak >> 20} MiB)"),
        };
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
