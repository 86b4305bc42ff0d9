using BenchmarkDotNet.Running;
using Ddpm.Benchmarks;

// dotnet run -c Release --project benchmarks/Ddpm.Benchmarks -- --filter '*'
// dotnet run -c Release --project benchmarks/Ddpm.Benchmarks -- ab [batch] [rounds]   (interleaved A/B)
if (args.Length > 0 && args[0] == "ab")
{
    InterleavedComparison.Run(args.Length > 1 ? int.Parse(args[1]) : 128, args.Length > 2 ? int.Parse(args[2]) : 12);
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
