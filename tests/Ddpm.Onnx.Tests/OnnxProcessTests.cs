using System.Buffers.Binary;
using System.Diagnostics;

namespace Ddpm.Onnx.Tests;

/// <summary>
/// Sampling through Ddpm.Onnx needs no libtorch: a program that references only Ddpm.Onnx (tests/Ddpm.Onnx.Probe) samples
/// an exported model in its own process and lists the native libraries mapped into it.
/// </summary>
[Collection("torch")]
public sealed class OnnxProcessTests(Xunit.Abstractions.ITestOutputHelper log)
{
    private static string ProbePath()
    {
        // tests/Ddpm.Onnx.Tests/bin/<configuration>/net10.0/ -> tests/Ddpm.Onnx.Probe/bin/<configuration>/net10.0/
        string here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        string framework = Path.GetFileName(here), configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
        string tests = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(here)!)!)!)!;
        return Path.Combine(tests, "Ddpm.Onnx.Probe", "bin", configuration, framework, "Ddpm.Onnx.Probe.dll");
    }

    [SkippableFact]
    public void A_program_sampling_through_ddpm_onnx_loads_onnx_runtime_and_no_libtorch()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the loaded libraries are read from /proc/self/maps, which only Linux has");
        string probe = ProbePath();
        Assert.True(File.Exists(probe), $"{probe} is built with this project (a ProjectReference)");
        // Nothing of TorchSharp is even a dependency of the program.
        string deps = File.ReadAllText(Path.ChangeExtension(probe, ".deps.json"));
        Assert.DoesNotContain("TorchSharp", deps);
        Assert.Contains("Microsoft.ML.OnnxRuntime", deps);

        var entry = TestModels.Small(EpsSchedule.Diffusion);
        using var model = TestModels.Seeded(entry, seed: 3);
        using var file = TestModels.Export(model, entry);
        string png = Path.Combine(file.Folder, "grid.png");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { probe, file.Path, png, "ddim", "5", "4" }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string error = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(120_000), "the probe did not finish in 2 minutes");
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {error}");

        var libraries = output.Split('\n').Where(l => l.StartsWith("lib: ", StringComparison.Ordinal)).Select(l => l[5..].Trim()).ToList();
        log.WriteLine(string.Join("\n", libraries));
        Assert.Contains(libraries, l => Path.GetFileName(l).StartsWith("libonnxruntime.so", StringComparison.Ordinal));
        Assert.DoesNotContain(libraries, l => Path.GetFileName(l).Contains("torch", StringComparison.OrdinalIgnoreCase) ||
                                              Path.GetFileName(l).StartsWith("libc10", StringComparison.Ordinal));
        Assert.Contains("model: SmallUNet", output);

        // The grid: 4 images of 8x8 in 2 columns, 2 pixels of padding, doubled: (2 * (8 + 2) + 2) * 2 = 44 pixels square, gray.
        byte[] bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        Assert.Equal(44, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal(44, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }
}
