using System.CommandLine;
using System.Diagnostics;
using Ddpm.Onnx;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm sample model.onnx`: draws a grid from a model exported with `ddpm export --format onnx`, through Ddpm.Onnx on
/// ONNX Runtime (the schedule and objective come from the file). The seed draws other images than the checkpoint's
/// TorchSharp sampling with the same seed: the noise generators differ.
/// </summary>
internal static class OnnxSampleCommand
{
    public static bool IsOnnx(string path) => string.Equals(Path.GetExtension(path), ".onnx", StringComparison.OrdinalIgnoreCase);

    /// <summary>Options of the TorchSharp path that an ONNX model cannot honour: one usage error naming them.</summary>
    public static void RejectTorchOnly(ParseResult parse, params (string Name, Option Option)[] options)
    {
        var given = options.Where(o => parse.GetResult(o.Option) is { Implicit: false }).Select(o => o.Name).ToList();
        if (given.Count > 0)
            throw new UsageException($"{string.Join(", ", given)} {(given.Count == 1 ? "applies" : "apply")} to checkpoints, not to an ONNX model " +
                                     "(it holds one set of float32 weights, its x_0 treatment is in its metadata, and it runs on the CPU).");
    }

    public static int Run(string path, int count, SamplerKind sampler, int? givenSteps, double eta, long seed, string? outFile,
                          string? classWords, double? guidance, TextWriter output)
    {
        Options.RequireFile(path, "an ONNX model");
        string png = outFile ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileNameWithoutExtension(path) + "-samples.png");
        Options.CheckWritableFile(png, "--out", [path]);
        using var model = OnnxDiffusionModel.Load(path);
        var condition = Options.ResolveClass(model, classWords, guidance, count);
        count = condition?.Labels.Count ?? count; // --class all rounds up to whole rows
        int steps = Options.StepsFor(givenSteps, model.Schedule.Timesteps);
        if (sampler != SamplerKind.Ddpm && steps > model.Schedule.Timesteps)
            throw new UsageException($"--steps {steps} exceeds the schedule's {model.Schedule.Timesteps} timesteps.");
        var watch = Stopwatch.StartNew();
        float[] images = model.Sample(count, sampler, steps, seed, eta, condition: condition);
        Ddpm.Diffusion.Sampling.CheckFinite(images, count);
        model.SaveGrid(images, png, condition?.Labels);
        string how = Options.DescribeSampler(sampler, steps, model.Schedule.Timesteps, eta);
        string what = condition is null ? "" : $", {Options.DescribeClass(condition.Labels, condition.Guidance, model.ClassNames)}";
        output.WriteLine($"wrote {png}: {count} images of {model.Name}{what} from {path} ({how}, ONNX Runtime, {watch.Elapsed.TotalSeconds:F1} s)");
        return DdpmCli.Ok;
    }
}
