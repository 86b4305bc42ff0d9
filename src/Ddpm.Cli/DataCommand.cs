using System.CommandLine;
using System.Diagnostics;
using Ddpm.Data;

namespace Ddpm.Cli;

/// <summary>`ddpm data fashion-mnist`: fetch, convert and verify a data set into the cache.</summary>
internal static class DataCommand
{
    public static Command Create(TextWriter output)
    {
        var name = new Argument<string>("dataset") { Description = "The data set to fetch: fashion-mnist." };
        var command = new Command("data", "Fetch and verify a data set into the local cache (DDPM_DATA or ~/.cache/ddpm).") { name };
        command.SetAction(parse =>
        {
            string dataset = parse.GetValue(name)!;
            if (!string.Equals(dataset, "fashion-mnist", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"Unknown data set '{dataset}'; ddpm data knows fashion-mnist.");
            var watch = Stopwatch.StartNew();
            string folder = FashionMnist.EnsureCached(log: output.WriteLine);
            var train = Idx.ReadImages(Path.Combine(folder, FashionMnist.TrainImagesFile));
            var test = Idx.ReadImages(Path.Combine(folder, FashionMnist.TestImagesFile));
            output.WriteLine($"fashion-mnist: {train.Count:N0} training and {test.Count:N0} test images of {train.Height}x{train.Width}, verified, in {folder} ({watch.Elapsed.TotalSeconds:F1} s)");
            return DdpmCli.Ok;
        });
        return command;
    }
}
