using System.Diagnostics;
using Ddpm.Diffusion;
using Ddpm.Interop;
using Ddpm.Models;
using Ddpm.Native;
using Ddpm.Onnx;
using static TorchSharp.torch;

namespace Ddpm.Benchmarks;

/// <summary>
/// Sampling a grid with TorchSharp (Sampling.Draw, as ddpm sample of a checkpoint) against the same model exported to
/// ONNX and sampled by Ddpm.Onnx (as ddpm sample model.onnx), one after the other in each round, so that both see the
/// same machine load: on a shared CPU only the ratio of the two within one run means anything.
/// </summary>
public static class OnnxComparison
{
    public static void Run(string name, int count, int steps, int rounds)
    {
        ModelLibrary.Load();
        var entry = ModelCatalog.Find(name) ?? throw new ArgumentException($"unknown model {name}; compiled: {ModelCatalog.Describe()}");
        Console.WriteLine($"allocator: {Allocator.Tune()}; torch threads {get_num_threads()}; {entry.Name}: {count} images, DPM-Solver++(2M) {steps} steps; " +
                          $"{rounds} rounds after 1 warm-up round");
        manual_seed(0);
        using var model = entry.CreateModel();
        model.eval();
        string folder = Directory.CreateTempSubdirectory("ddpm-onnx-bench-").FullName;
        try
        {
            string path = Path.Combine(folder, entry.Name + ".onnx");
            OnnxExport.Write(model, entry, path);
            using var onnx = OnnxDiffusionModel.Load(path);
            var torchTimes = new List<double>();
            var onnxTimes = new List<double>();
            var watch = new Stopwatch();
            for (int round = 0; round < rounds + 1; round++)
            {
                watch.Restart();
                using (var images = Sampling.Draw(model, entry.Diffusion, entry.BatchShape(count), count, SamplerKind.DpmSolver2M, steps, 0, seed: round, batchSize: 64)) { }
                double torchSeconds = watch.Elapsed.TotalSeconds;
                watch.Restart();
                onnx.Sample(count, SamplerKind.DpmSolver2M, steps, seed: round, batchSize: 64);
                double onnxSeconds = watch.Elapsed.TotalSeconds;
                Console.WriteLine($"round {round}{(round == 0 ? " (warm-up)" : "")}: TorchSharp {torchSeconds:F2} s, ONNX Runtime {onnxSeconds:F2} s");
                if (round == 0) continue;
                torchTimes.Add(torchSeconds);
                onnxTimes.Add(onnxSeconds);
            }
            double Median(List<double> v) { var s = v.Order().ToList(); return (s[(s.Count - 1) / 2] + s[s.Count / 2]) / 2; }
            Console.WriteLine($"TorchSharp   median {Median(torchTimes):F2} s, min {torchTimes.Min():F2} s");
            Console.WriteLine($"ONNX Runtime median {Median(onnxTimes):F2} s, min {onnxTimes.Min():F2} s");
            Console.WriteLine($"ONNX Runtime / TorchSharp (medians): {Median(onnxTimes) / Median(torchTimes):F3}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
