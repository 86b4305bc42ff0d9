using System.CommandLine;
using System.Globalization;
using Ddpm.Interop;
using Ddpm.Training;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm export &lt;checkpoint&gt; --out FILE`: a checkpoint's weights as safetensors or a PyTorch state dict under the
/// tutorial's keys, which its PyTorch Unet loads with strict=True, and the run settings beside them (FILE.yaml); or, with
/// --format onnx, the whole U-Net as an ONNX graph with the schedule in its metadata (Ddpm.Onnx samples it without libtorch).
/// </summary>
internal static class ExportCommand
{
    public static Command Create(TextWriter output)
    {
        var checkpointPath = new Argument<string>("checkpoint") { Description = "A checkpoint written by ddpm train, ddpm import or DiffusionModel.Save." };
        var format = new Option<string?>("--format")
        {
            HelpName = "safetensors|pytorch|onnx",
            Description = "safetensors, pytorch (torch.save of the state dict) or onnx (the U-Net as an ONNX graph, for ONNX Runtime). Default: what the --out extension names (.safetensors; .pt, .pth, .bin; .onnx).",
            CustomParser = result =>
            {
                string value = result.Tokens.Single().Value.ToLowerInvariant();
                if (value is not ("safetensors" or "pytorch" or "onnx")) result.AddError($"--format must be safetensors, pytorch or onnx, got '{Options.Echo(value)}'.");
                return value;
            },
        };
        var ema = new Option<bool>("--ema") { Description = "Export the EMA weights (default: the weights ddpm sample would use)." };
        var raw = new Option<bool>("--raw") { Description = "Export the trained (raw) weights." };
        var outFile = new Option<string>("--out") { Description = "The file to write (replaced if it exists); for safetensors and pytorch the settings go to <out>.yaml.", Required = true };
        var command = new Command("export", "Write a checkpoint's weights as safetensors or a PyTorch state dict, with the tutorial's keys, or the model as ONNX.")
        {
            checkpointPath, format, ema, raw, outFile,
        };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpointPath)!;
            string target = parse.GetValue(outFile)!;
            if (parse.GetValue(ema) && parse.GetValue(raw)) throw new UsageException("--ema and --raw exclude each other; give one or neither.");
            var weights = parse.GetValue(ema) ? SamplingWeights.Ema : parse.GetValue(raw) ? SamplingWeights.Raw : SamplingWeights.Unknown;
            bool onnxByExtension = string.Equals(Path.GetExtension(target), ".onnx", StringComparison.OrdinalIgnoreCase);
            if (parse.GetValue(format) == "onnx" || (parse.GetValue(format) is null && onnxByExtension))
                return ExportOnnx(path, target, weights, output);
            if (onnxByExtension)
                throw new UsageException($"--out {Options.Echo(target)} names an ONNX file, but --format is {parse.GetValue(format)}; make them agree.");
            var byExtension = WeightFile.FormatOf(target);
            WeightFormat chosen = parse.GetValue(format) switch
            {
                "safetensors" => WeightFormat.Safetensors,
                "pytorch" => WeightFormat.PyTorch,
                _ => byExtension ?? throw new UsageException($"--out {Options.Echo(target)}: give --format safetensors, pytorch or onnx, or an extension that names one (.safetensors, .pt, .pth, .bin, .onnx)."),
            };
            if (byExtension is { } named && named != chosen)
                throw new UsageException($"--out {Options.Echo(target)} names a {Name(named)} file, but --format is {Name(chosen)}; make them agree.");
            Options.RequireFile(path, "a checkpoint");
            Options.CheckWritableFile(target, "--out", [path]);
            Options.CheckWritableFile(target + ".yaml", "--out", [path]);

            var result = WeightExchange.Export(path, target, chosen, weights);
            string model = result.Model.Length > 0 ? result.Model : "a model its settings do not name";
            output.WriteLine($"wrote {result.WeightsPath} ({Name(chosen)}, {result.Tensors} tensors, {result.Values.ToString("N0", CultureInfo.InvariantCulture)} values): " +
                             $"the {result.Weights} weights of {model} at step {result.Step} ({result.WeightsReason}), and its run settings to {result.SettingsPath}");
            return DdpmCli.Ok;
        });
        return command;
    }

    /// <summary>--format onnx: the U-Net as an ONNX graph, its schedule and settings in the file's metadata (no .yaml beside it).</summary>
    private static int ExportOnnx(string path, string target, SamplingWeights weights, TextWriter output)
    {
        if (WeightFile.FormatOf(target) is { } named)
            throw new UsageException($"--out {Options.Echo(target)} names a {Name(named)} file, but --format is onnx; make them agree.");
        Options.RequireFile(path, "a checkpoint");
        Options.CheckWritableFile(target, "--out", [path]);
        var result = OnnxExport.Export(path, target, weights);
        output.WriteLine($"wrote {result.Path} (ONNX opset {OnnxExport.Opset}, {result.Bytes / (1024.0 * 1024.0):F1} MiB): the {result.Weights} weights of {result.Model} " +
                         $"at step {result.Step} ({result.WeightsReason}), with the schedule and run settings in its metadata; sample it with ddpm sample {result.Path}");
        return DdpmCli.Ok;
    }

    internal static string Name(WeightFormat format) => format == WeightFormat.Safetensors ? "safetensors" : "PyTorch";
}
