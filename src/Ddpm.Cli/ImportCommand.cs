using System.CommandLine;
using System.Globalization;
using Ddpm.Interop;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm import FILE --model NAME --out CHECKPOINT`: weights trained elsewhere (safetensors or a PyTorch state dict with the
/// tutorial's keys) as a checkpoint that ddpm sample, ddpm eval and DiffusionModel.Load read.
/// </summary>
internal static class ImportCommand
{
    public static Command Create(TextWriter output)
    {
        var weightsPath = new Argument<string>("weights") { Description = "A state dict with the tutorial's keys: .safetensors, or .pt, .pth, .bin (torch.save of model.state_dict())." };
        var model = new Option<string>("--model") { Description = "The compiled model the weights belong to (a name of ddpm list, or its spec file).", Required = true };
        var outFile = new Option<string>("--out") { Description = "The checkpoint to write.", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace --out if it exists." };
        var stripPrefix = new Option<string?>("--strip-prefix")
        {
            HelpName = "PREFIX",
            Description = "Remove PREFIX from the start of every key that has it first (module. for a state dict saved from DataParallel or DistributedDataParallel).",
        };
        var command = new Command("import", "Make a checkpoint from weights trained elsewhere (safetensors or a PyTorch state dict).")
        {
            weightsPath, model, outFile, overwrite, stripPrefix,
        };
        command.SetAction(parse =>
        {
            string source = parse.GetValue(weightsPath)!;
            string target = parse.GetValue(outFile)!;
            if (WeightFile.FormatOf(source) is null)
                throw new UsageException($"'{Options.Echo(source)}': give a .safetensors file, or a PyTorch state dict (.pt, .pth, .bin).");
            Options.RequireFile(source, "a weights file");
            var entry = ModelResolver.Resolve(parse.GetValue(model)!).Entry;
            bool replace = parse.GetValue(overwrite);
            if (File.Exists(target) && !replace)
                throw new UsageException($"--out {Options.Echo(target)} exists; pass --overwrite to replace it.");
            Options.CheckWritableFile(target, "--out", [source], writesCheckpoint: true);

            var result = WeightExchange.ImportStripping(source, entry, target, replace, parse.GetValue(stripPrefix));
            string converted = result.ConvertedTensors > 0 ? $", {result.ConvertedTensors} converted to float32" : "";
            output.WriteLine($"wrote {result.CheckpointPath}: {result.Model} from {source} ({ExportCommand.Name(result.Format)}, {result.Tensors} tensors, " +
                             $"{result.Values.ToString("N0", CultureInfo.InvariantCulture)} values{converted}) as raw weights at step 0, no EMA. " +
                             "The optimizer state is fresh (Adam, no steps taken) and the training settings are the model's declared ones.");
            return DdpmCli.Ok;
        });
        return command;
    }
}
