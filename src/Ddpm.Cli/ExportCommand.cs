using System.CommandLine;
using System.Globalization;
using Ddpm.Interop;
using Ddpm.Training;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm export &lt;checkpoint&gt; --out FILE`: a checkpoint's weights as safetensors or a PyTorch state dict under the
/// tutorial's keys, which its PyTorch Unet loads with strict=True, and the run settings beside them (FILE.yaml).
/// </summary>
internal static class ExportCommand
{
    public static Command Create(TextWriter output)
    {
        var checkpointPath = new Argument<string>("checkpoint") { Description = "A checkpoint written by ddpm train, ddpm import or DiffusionModel.Save." };
        var format = new Option<string?>("--format")
        {
            HelpName = "safetensors|pytorch",
            Description = "safetensors, or pytorch (torch.save of the state dict). Default: what the --out extension names (.safetensors; .pt, .pth, .bin).",
            CustomParser = result =>
            {
                string value = result.Tokens.Single().Value.ToLowerInvariant();
                if (value is not ("safetensors" or "pytorch")) result.AddError($"--format must be safetensors or pytorch, got '{Options.Echo(value)}'.");
                return value;
            },
        };
        var ema = new Option<bool>("--ema") { Description = "Export the EMA weights (default: the weights ddpm sample would use)." };
        var raw = new Option<bool>("--raw") { Description = "Export the trained (raw) weights." };
        var outFile = new Option<string>("--out") { Description = "The weights file to write (replaced if it exists); the settings go to <out>.yaml.", Required = true };
        var command = new Command("export", "Write a checkpoint's weights as safetensors or a PyTorch state dict, with the tutorial's keys.")
        {
            checkpointPath, format, ema, raw, outFile,
        };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpointPath)!;
            string target = parse.GetValue(outFile)!;
            if (parse.GetValue(ema) && parse.GetValue(raw)) throw new UsageException("--ema and --raw exclude each other; give one or neither.");
            var byExtension = WeightFile.FormatOf(target);
            WeightFormat chosen = parse.GetValue(format) switch
            {
                "safetensors" => WeightFormat.Safetensors,
                "pytorch" => WeightFormat.PyTorch,
                _ => byExtension ?? throw new UsageException($"--out {Options.Echo(target)}: give --format safetensors or pytorch, or an extension that names one (.safetensors, .pt, .pth, .bin)."),
            };
            if (byExtension is { } named && named != chosen)
                throw new UsageException($"--out {Options.Echo(target)} names a {Name(named)} file, but --format is {Name(chosen)}; make them agree.");
            if (!File.Exists(path)) throw new UsageException($"Checkpoint '{path}' does not exist.");
            Options.CheckWritableFile(target, "--out");
            Options.CheckWritableFile(target + ".yaml", "--out");
            var weights = parse.GetValue(ema) ? SamplingWeights.Ema : parse.GetValue(raw) ? SamplingWeights.Raw : SamplingWeights.Unknown;

            var result = WeightExchange.Export(path, target, chosen, weights);
            string model = result.Model.Length > 0 ? result.Model : "a model its settings do not name";
            output.WriteLine($"wrote {result.WeightsPath} ({Name(chosen)}, {result.Tensors} tensors, {result.Values.ToString("N0", CultureInfo.InvariantCulture)} values): " +
                             $"the {result.Weights} weights of {model} at step {result.Step} ({result.WeightsReason}), and its run settings to {result.SettingsPath}");
            return DdpmCli.Ok;
        });
        return command;
    }

    internal static string Name(WeightFormat format) => format == WeightFormat.Safetensors ? "safetensors" : "PyTorch";
}
