using BenchmarkDotNet.Running;
using Ddpm.Benchmarks;
using Ddpm.Native;

// The same allocator as the ddpm command (tcmalloc when bundled, see AllocatorPreload).
if (AllocatorPreload.RestartIfNeeded() is { } problem)
{
    Console.Error.WriteLine(problem);
    return 2;
}
Denormals.Flush(); // as ddpm does: before libtorch starts its worker threads

// dotnet run -c Release --project benchmarks/Ddpm.Benchmarks -- --filter '*'
// dotnet run -c Release --project benchmarks/Ddpm.Benchmarks -- ab [batch] [rounds]   (interleaved A/B)
if (args.Length > 0 && args[0] == "ab")
{
    InterleavedComparison.Run(args.Length > 1 ? int.Parse(args[1]) : 128, args.Length > 2 ? int.Parse(args[2]) : 12);
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
