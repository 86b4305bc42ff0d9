using System.CommandLine;
using Ddpm.Native;

namespace Ddpm.Cli;

/// <summary>The `ddpm` command: train, sample, eval, export, import, inspect, list, data, bench, serve.</summary>
public static class DdpmCli
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int BadUsage = 2;

    /// <summary>Runs the command line; returns 0 (ok), 1 (failure) or 2 (bad usage).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        Ddpm.Models.ModelLibrary.Load();
        var verbose = new Option<bool>("--verbose") { Description = "Show stack traces of errors.", Recursive = true };
        var root = new RootCommand("Ddpm: train and sample denoising diffusion models declared in C# attributes or YAML specs.")
        {
            TrainCommand.Create(output),
            SampleCommand.Create(output),
            EvalCommand.Create(output),
            ExportCommand.Create(output),
            ImportCommand.Create(output),
            InspectCommand.Create(output),
            ListCommand.Create(output),
            DataCommand.Create(output),
            BenchCommand.Create(output),
            ServeCommand.Create(output),
        };
        root.Options.Add(verbose);

        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var problem in parse.Errors) error.WriteLine($"ddpm: {problem.Message}");
            error.WriteLine("Run 'ddpm --help' for usage.");
            return BadUsage;
        }
        // Commands that run libtorch set it up first (denormals must be flushed before libtorch starts its threads);
        // list, data, help and --version never load it; serve loads it only for a checkpoint (through the facade), so an
        // ONNX-only server never does.
        if (parse.CommandResult.Command is { } command and not RootCommand && command.Name is not ("list" or "data" or "serve"))
            NativeSetup.EnsureConfigured();
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            error.WriteLine($"ddpm: {e.Message}");
            return BadUsage;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // One clear line; the stack only on request.
            error.WriteLine($"ddpm: {Describe(e)}");
            if (parse.GetValue(verbose)) error.WriteLine(e);
            return Failure;
        }
    }

    /// <summary>An exception as one line in the user's terms: wrappers unwrapped, .NET's " (Parameter 'x')" suffix dropped.</summary>
    internal static string Describe(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
            e = e.InnerException!;
        string message = e.Message;
        // ArgumentException appends " (Parameter 'name')" (and "Actual value was ..."): the code's names, not the user's.
        if (e is ArgumentException { ParamName: { } name } && message.IndexOf($" (Parameter '{name}')", StringComparison.Ordinal) is int at and > 0)
            message = message[..at];
        // One line, however the message was written (libtorch's carry its C++ frames on the lines after the first;
        // --verbose prints them).
        return message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? e.GetType().Name;
    }
}

/// <summary>The user asked for something the command cannot do as asked (exit code 2).</summary>
public sealed class UsageException(string message) : Exception(message);
