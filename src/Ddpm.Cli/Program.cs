using Ddpm.Cli;
using Ddpm.Native;

// Before anything else: on Linux this may restart the process with tcmalloc preloaded.
if (AllocatorPreload.RestartIfNeeded() is { } problem)
{
    Console.Error.WriteLine($"ddpm: {problem}");
    return DdpmCli.BadUsage;
}
return DdpmCli.Run(args, Console.Out, Console.Error);
