// Usage: Ddpm.Onnx.Probe <model.onnx> <out.png> [ddpm|ddim|dpmpp-2m] [steps] [count]
// Samples with Ddpm.Onnx, writes the grid, then prints every shared library mapped into this process (Linux:
// /proc/self/maps), one "lib: <path>" line each, and "seconds: <sampling time>".
using System.Diagnostics;
using Ddpm;
using Ddpm.Onnx;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Ddpm.Onnx.Probe <model.onnx> <out.png> [ddpm|ddim|dpmpp-2m] [steps] [count]");
    return 2;
}
var sampler = args.Length > 2 ? args[2] switch
{
    "ddpm" => SamplerKind.Ddpm,
    "ddim" => SamplerKind.Ddim,
    "dpmpp-2m" => SamplerKind.DpmSolver2M,
    var other => throw new ArgumentException($"unknown sampler '{other}'"),
} : SamplerKind.Ddim;
int steps = args.Length > 3 ? int.Parse(args[3]) : 5;
int count = args.Length > 4 ? int.Parse(args[4]) : 4;

using var model = OnnxDiffusionModel.Load(args[0]);
var watch = Stopwatch.StartNew();
float[] images = model.Sample(count, sampler, steps, seed: 1);
double seconds = watch.Elapsed.TotalSeconds;
model.SaveGrid(images, args[1]);
Console.WriteLine($"model: {model.Name}");
Console.WriteLine($"seconds: {seconds.ToString("F3", System.Globalization.CultureInfo.InvariantCulture)}");
if (File.Exists("/proc/self/maps"))
    foreach (string library in File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                                   .Where(f => f.Length >= 6 && f[5].Contains(".so")).Select(f => f[5]).Distinct())
        Console.WriteLine($"lib: {library}");
return 0;
