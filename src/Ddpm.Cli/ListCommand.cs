using System.CommandLine;
using System.Globalization;
using Ddpm.Models;

namespace Ddpm.Cli;

/// <summary>`ddpm list` (and `ddpm inspect` without a model): the model catalog, one line per model.</summary>
internal static class ListCommand
{
    public static Command Create(TextWriter output)
    {
        var command = new Command("list", "List the models ddpm can train: name, where it is declared, parameters, images and schedule.");
        command.SetAction(_ =>
        {
            Write(output);
            return DdpmCli.Ok;
        });
        return command;
    }

    /// <summary>Writes the catalog as an aligned table, models in name order.</summary>
    public static void Write(TextWriter output)
    {
        var rows = new List<string[]> { new[] { "MODEL", "DECLARED IN", "PARAMETERS", "IMAGES", "SCHEDULE" } };
        foreach (var entry in ModelCatalog.All)
            rows.Add(new[]
            {
                entry.Name,
                Source(entry),
                entry.ParameterCount.ToString("N0", CultureInfo.InvariantCulture),
                $"{entry.Channels}x{entry.ImageSize}x{entry.ImageSize}",
                $"T = {entry.Schedule.Timesteps}, predicts {Ddpm.Specs.SpecYaml.Spelling(entry.Diffusion.Options.Objective)}",
            });
        if (rows.Count == 1)
        {
            output.WriteLine("No models are compiled into this ddpm.");
            return;
        }
        int[] widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
            output.WriteLine(string.Join("  ", row.Select((cell, c) => c == row.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
    }

    /// <summary>"spec fashion-mnist.yaml" or "attributes, Tutorial.cs": which front end declared the model, and where.</summary>
    public static string Source(ModelEntry entry) =>
        entry.SpecFile.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || entry.SpecFile.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            ? "spec " + entry.SpecFile
            : "attributes, " + entry.SpecFile;
}
