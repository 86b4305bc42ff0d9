using System.CommandLine;
using System.Diagnostics;
using Ddpm.Data;

namespace Ddpm.Cli;

/// <summary>`ddpm data fashion-mnist|mnist`: fetch, convert and verify a data set into the cache.</summary>
internal static class DataCommand
{
    /// <summary>The data sets `ddpm data` fetches: name, and the function that makes sure the cache holds it.</summary>
    private static readonly (string Name, Func<Action<string>, string> EnsureCached)[] Fetchable =
    [
        ("fashion-mnist", log => FashionMnist.EnsureCached(log: log)),
        ("mnist", log => Mnist.EnsureCached(log: log)),
    ];

    public static Command Create(TextWriter output)
    {
        string names = string.Join(" or ", Fetchable.Select(f => f.Name));
        var name = new Argument<string>("dataset") { Description = $"The data set to fetch: {names}." };
        var command = new Command("data", "Fetch and verify a data set into the local cache (DDPM_DATA or ~/.cache/ddpm).") { name };
        command.SetAction(parse =>
        {
            string dataset = parse.GetValue(name)!;
            var match = Fetchable.Where(f => string.Equals(f.Name, dataset, StringComparison.OrdinalIgnoreCase)).ToArray();
            if (match.Length == 0)
                throw new UsageException($"Unknown data set '{dataset}'; ddpm data knows {names}.");
            var watch = Stopwatch.StartNew();
            string folder = match[0].EnsureCached(output.WriteLine);
            var train = Idx.ReadImages(Path.Combine(folder, FashionMnist.TrainImagesFile));
            var test = Idx.ReadImages(Path.Combine(folder, FashionMnist.TestImagesFile));
            output.WriteLine($"{match[0].Name}: {train.Count:N0} training and {test.Count:N0} test images of {train.Height}x{train.Width}, verified, in {folder} ({watch.Elapsed.TotalSeconds:F1} s)");
            return DdpmCli.Ok;
        });
        return command;
    }
}
