namespace Ddpm.Generators.Tests;

/// <summary>The code generated from each shipped spec: model, schedule and catalog registration, compiled and snapshotted.</summary>
public class YamlSnapshotTests
{
    static void VerifySpec(string specFile, string[] expectedHints, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        var (result, output) = SpecFiles.Run(("specs/" + specFile, SpecFiles.Read(specFile)));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Equal(expectedHints, result.GeneratedSources.Select(s => s.HintName).Order());
        foreach (string hint in expectedHints)
        {
            Assert.StartsWith(Path.GetFileNameWithoutExtension(specFile) + "/", hint);
            Snapshot.Verify(SpecFiles.Generated(result, hint), Path.GetFileName(hint)[..^".cs".Length], method: method);
        }
    }

    [Fact]
    public void Fashion_mnist_spec_snapshot() =>
        VerifySpec("fashion-mnist.yaml", new[] { "fashion-mnist/FashionMnistSchedule.g.cs", "fashion-mnist/FashionMnistUNet.Catalog.g.cs", "fashion-mnist/FashionMnistUNet.g.cs" });

    [Fact]
    public void Cifar10_spec_snapshot() =>
        VerifySpec("cifar10.yaml", new[] { "cifar10/Cifar10Schedule.g.cs", "cifar10/Cifar10UNet.Catalog.g.cs", "cifar10/Cifar10UNet.g.cs" });

    [Fact]
    public void Mnist_cosine_spec_snapshot() =>
        VerifySpec("mnist-cosine.yaml", new[] { "mnist-cosine/MnistCosineSchedule.g.cs", "mnist-cosine/MnistCosineUNet.Catalog.g.cs", "mnist-cosine/MnistCosineUNet.g.cs" });

    [Fact]
    public void Dynamic_threshold_schedule_snapshot()
    {
        const string yaml = "schedule:\n  name: ThresholdSchedule\n  kind: cosine\n  timesteps: 8\n  objective: x0\n  dynamic_threshold: 0.995\n";
        var (result, output) = SpecFiles.Run(("specs/threshold.yaml", yaml));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string code = SpecFiles.Generated(result, "threshold/ThresholdSchedule.g.cs");
        Assert.Contains("public const global::Ddpm.Objective Objective = global::Ddpm.Objective.X0;", code);
        Assert.Contains("public const double DynamicThreshold = 0.995d;", code);
        Snapshot.Verify(code, "ThresholdSchedule.g");
    }
}
