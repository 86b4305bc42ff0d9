using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Ddpm.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
