using System.CommandLine;

namespace Ddpm.Cli;

/// <summary>`ddpm bench`: end-to-end speed and memory figures of this machine.</summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output)
    {
        var command = new Command("bench", "Measure training and sampling speed and memory on this machine.");
        command.SetAction(int (_) => throw new UsageException("ddpm bench is not available yet."));
        return command;
    }
}
