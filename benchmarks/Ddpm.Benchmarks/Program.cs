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
// dotnet run -c Release --project benchmarks/Ddpm.Benchmarks -- onnx [model] [count] [steps] [rounds]   (TorchSharp vs ONNX Runtime)
if (args.Length > 0 && args[0] == "onnx")
{
    OnnxComparison.Run(args.Length > 1 ? args[1] : "FashionMnistUNet", args.Length > 2 ? int.Parse(args[2]) : 64,
                       args.Length > 3 ? int.Parse(args[3]) : 20, args.Length > 4 ? int.Parse(args[4]) : 5);
    return 0;
}
if (args.Length > 0 && args[0] == "ab")
{
    InterleavedComparison.Run(args.Length > 1 ? int.Parse(args[1]) : 128, args.Length > 2 ? int.Parse(args[2]) : 12);
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
