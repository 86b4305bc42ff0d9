using System.CommandLine;
using System.Diagnostics;
using Ddpm.Diffusion;
using Ddpm.Models;
using Ddpm.Native;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>`ddpm sample &lt;checkpoint&gt;`: turns a checkpoint into a PNG grid (and optionally the denoising animation).</summary>
internal static class SampleCommand
{
    public static Command Create(TextWriter output)
    {
        var checkpointPath = new Argument<string>("checkpoint") { Description = "A checkpoint written by ddpm train (runs/<name>/checkpoints/last.ckpt), or a model.onnx of ddpm export --format onnx (sampled on ONNX Runtime)." };
        var count = new Option<int>("--count") { Description = $"Number of images, at most {MaxCount} (at most {MaxFramesCount} with --frames); drawn 64 at a time.", DefaultValueFactory = _ => 64 };
        var sampler = Options.Sampler();
        var steps = Options.SamplerSteps();
        var eta = new Option<double>("--eta") { Description = "DDIM eta, from 0 to 1: 0 is deterministic, 1 is DDPM-like noise.", DefaultValueFactory = _ => 0.0 };
        var seed = new Option<long>("--seed") { Description = "Seed of the starting noise.", DefaultValueFactory = _ => 0 };
        var outFile = new Option<string?>("--out") { Description = "PNG to write (default: samples.png in the run folder for a run's checkpoints/X.ckpt, else X-samples.png beside the checkpoint)." };
        var frames = new Option<bool>("--frames") { Description = "Also write the denoising sequence as an animated GIF (<out>.gif)." };
        var weights = Options.Weights();
        var noEma = new Option<bool>("--no-ema") { Description = "Same as --weights raw." };
        var precision = Options.Precision();
        var x0Limit = Options.X0Limit();
        var device = Options.Device();
        var classOption = Options.Class();
        var guidance = Options.Guidance();
        var engine = Options.Engine();
        var command = new Command("sample", "Draw images from a checkpoint.") { checkpointPath, count, sampler, steps, eta, seed, outFile, frames, weights, noEma, precision, x0Limit, device, classOption, guidance, engine };
        Options.Between(count, 1, MaxCount);
        Options.AtLeast(steps, 1);
        Options.FiniteBetween(eta, 0, 1);
        Options.WholeNumber(seed);
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpointPath)!;
            if (OnnxSampleCommand.IsOnnx(path))
            {
                OnnxSampleCommand.RejectTorchOnly(parse, ("--frames", frames), ("--weights", weights), ("--no-ema", noEma), ("--precision", precision),
                                                  ("--x0-limit", x0Limit), ("--device", device));
                return OnnxSampleCommand.Run(path, parse.GetValue(count), parse.GetValue(sampler) ?? SpecDefaults.Sampler, parse.GetValue(steps), parse.GetValue(eta),
                                             parse.GetValue(seed), parse.GetValue(outFile), parse.GetValue(classOption), parse.GetValue(guidance), output);
            }
            // Where the images go is checked before minutes of sampling.
            string png = parse.GetValue(outFile) ?? DefaultPng(path);
            string? gif = parse.GetValue(frames) ? Path.ChangeExtension(png, ".gif") : null;
            if (gif is not null && parse.GetValue(count) > MaxFramesCount)
                throw new UsageException($"--frames keeps every step of every image in memory: use --count {MaxFramesCount} or fewer with it, got {parse.GetValue(count)}.");
            Options.CheckWritableFile(png, "--out", [path]);
            if (gif is not null) Options.CheckWritableFile(gif, "--out", [path]);
            string deviceName = Options.ResolveDevice(parse.GetValue(device));
            string computePrecision = parse.GetValue(precision) ?? "fp32";
            Options.CheckPrecisionOnDevice(computePrecision, deviceName);
            using var opened = Options.OpenCheckpoint(path, parse.GetValue(noEma) ? SamplingWeights.Raw : parse.GetValue(weights) ?? SamplingWeights.Unknown);
            var entry = opened.Entry;
            var condition = Options.ResolveClass(opened, parse.GetValue(classOption), parse.GetValue(guidance), parse.GetValue(count));
            int images = condition?.Labels.Count ?? parse.GetValue(count); // --class all rounds up to whole rows
            var model = opened.Module;
            var kind = parse.GetValue(sampler) ?? SpecDefaults.Sampler;
            int ddimSteps = Options.StepsFor(parse.GetValue(steps), entry.Schedule.Timesteps);
            if (kind != SamplerKind.Ddpm && ddimSteps > entry.Schedule.Timesteps)
                throw new UsageException($"--steps {ddimSteps} exceeds the schedule's {entry.Schedule.Timesteps} timesteps.");
            var chosen = SamplingEngine.Choose(parse.GetValue(engine), opened, path, deviceName, computePrecision, gif is not null,
                                               parse.GetResult(x0Limit) is { Implicit: false }, Math.Min(images, Sampling.GridBatch));
            if (chosen.Engine == SamplingEngine.Onnx)
            {
                var onnxWatch = Stopwatch.StartNew();
                string graph = SamplingEngine.ExportedGraph(path, opened);
                var onnxCondition = condition is null ? null : new Ddpm.Onnx.OnnxClassCondition(condition.Labels, condition.Guidance);
                float[] drawn = SamplingEngine.SampleOnnx(graph, images, kind, ddimSteps, parse.GetValue(eta), parse.GetValue(seed), onnxCondition);
                Sampling.CheckFinite(drawn, images);
                using (var grid = tensor(drawn, entry.BatchShape(images)))
                    Ddpm.Imaging.ImageGrid.SavePng(grid, png, columns: Ddpm.Imaging.GridLayout.Columns(images, condition?.Labels), scale: Ddpm.Imaging.GridLayout.Scale(entry.ImageSize));
                string onnxHow = Options.DescribeSampler(kind, ddimSteps, entry.Schedule.Timesteps, parse.GetValue(eta));
                string onnxWhat = condition is null ? "" : $", {Options.DescribeClass(condition, opened.ClassNames)}";
                output.WriteLine($"wrote {png}: {images} images of {entry.Name}{onnxWhat} at step {opened.Step} " +
                                 $"({onnxHow}, x0 limit {Options.DescribeX0Limit(entry.Diffusion.Options)}, {Options.WeightsName(opened.Weights)} weights: {opened.WeightsReason}; ONNX Runtime ({chosen.Reason}), {onnxWatch.Elapsed.TotalSeconds:F1} s)");
                return DdpmCli.Ok;
            }
            model.to(new Device(deviceName)); // the checkpoint holds CPU tensors; sampling runs where the model is
            if (ConvolutionBackends.ChooseFor(model, computePrecision, entry.ImageSize, entry.Channels, ConvolutionBackends.Purpose.Sampling, deviceName, entry.CreateModel) is string convolutions) output.WriteLine(convolutions);
            var sampled = PrecisionCast.Wrap(model, computePrecision);
            var diffusion = Options.WithX0Limit(entry.Diffusion, parse.GetValue(x0Limit));
            var watch = Stopwatch.StartNew();
            Sampling.WriteGrid(sampled, diffusion, entry.BatchShape(images), kind, ddimSteps,
                               parse.GetValue(eta), parse.GetValue(seed), png, gif, condition);
            string how = Options.DescribeSampler(kind, ddimSteps, entry.Schedule.Timesteps, parse.GetValue(eta));
            string what = condition is null ? "" : $", {Options.DescribeClass(condition, opened.ClassNames)}";
            output.WriteLine($"wrote {png}{(gif is null ? "" : $" and {gif}")}: {images} images of {entry.Name}{what} at step {opened.Step} " +
                             $"({how}, x0 limit {Options.DescribeX0Limit(diffusion.Options)}, {Options.WeightsName(opened.Weights)} weights: {opened.WeightsReason}; {computePrecision}, TorchSharp ({chosen.Reason}), {watch.Elapsed.TotalSeconds:F1} s, peak RSS {Allocator.ResidentMemory().PeakRss >> 20} MiB)");
            return DdpmCli.Ok;
        });
        return command;
    }

    /// <summary>
    /// Where a grid goes without --out: samples.png in the run folder for a checkpoint in a run's checkpoints folder
    /// (runs/x/checkpoints/last.ckpt: runs/x/samples.png), else beside the checkpoint as NAME-samples.png (a checkpoint
    /// in / or in the current folder included).
    /// </summary>
    internal static string DefaultPng(string checkpoint)
    {
        string full = Path.GetFullPath(checkpoint);
        string folder = Path.GetDirectoryName(full) ?? Path.GetPathRoot(full) ?? ".";
        if (string.Equals(Path.GetFileName(folder), "checkpoints", StringComparison.Ordinal) && Path.GetDirectoryName(folder) is { } run)
            return Path.Combine(run, "samples.png");
        return Path.Combine(folder, Path.GetFileNameWithoutExtension(full) + "-samples.png");
    }

    /// <summary>The most images in one grid (a 64 x 64 grid; `ddpm eval --save-samples` writes larger sets).</summary>
    public const int MaxCount = 4096;

    /// <summary>The most images with --frames, which keeps every step of every image.</summary>
    public const int MaxFramesCount = 256;
}
