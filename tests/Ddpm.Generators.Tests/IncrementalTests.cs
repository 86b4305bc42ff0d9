using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using TrackingNames = Ddpm.Generators.TrackingNames;

namespace Ddpm.Generators.Tests;

/// <summary>The pipeline caches: an unrelated edit emits nothing, editing one model re-emits only it.</summary>
public class IncrementalTests
{
    static readonly string[] Steps = { TrackingNames.UNetDeclarations, TrackingNames.ScheduleDeclarations, TrackingNames.UNetSpecs, TrackingNames.ScheduleSpecs };

    static (GeneratorDriver Driver, CSharpCompilation Compilation) FirstRun(params string[] sources)
    {
        var compilation = GeneratorHarness.Compilation(sources);
        var driver = GeneratorHarness.Driver().RunGenerators(compilation);
        return (driver, compilation);
    }

    static IEnumerable<IncrementalStepRunReason> OutputReasons(GeneratorRunResult result) =>
        result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(step => step.Outputs).Select(o => o.Reason);

    [Fact]
    public void An_unrelated_edit_reruns_no_emit_step()
    {
        var (driver, compilation) = FirstRun(Sources.SeedModel, Sources.SeedSchedule);
        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("public class Unrelated { public int X => 1; }", GeneratorHarness.ParseOptions));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        foreach (string step in Steps)
            Assert.All(result.TrackedSteps[step].SelectMany(s => s.Outputs), o =>
                Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {o.Reason}"));
        Assert.All(OutputReasons(result), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    /// <summary>Every pipeline step the generator names, found by reflection (a new step is covered without editing this test).</summary>
    static string[] AllTrackingNames() =>
        typeof(TrackingNames).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToArray();

    [Fact]
    public void Every_tracked_step_runs_and_caches_on_an_unrelated_edit()
    {
        // An attributed model linked to its schedule plus a YAML spec: together they reach every step.
        var compilation = GeneratorHarness.Compilation(AttributedCatalogTests.Declarations);
        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            new[] { new DdpmGenerator().AsSourceGenerator() },
            new AdditionalText[] { new GeneratorHarness.InMemoryAdditionalText("specs/mnist-cosine.yaml", SpecFiles.Read("mnist-cosine.yaml")) },
            GeneratorHarness.ParseOptions, driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));
        driver = driver.RunGenerators(compilation);
        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("public class Unrelated { public int X => 1; }", GeneratorHarness.ParseOptions));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        string[] names = AllTrackingNames();
        Assert.True(names.Length >= 9, $"found {names.Length} tracking names");
        foreach (string step in names)
        {
            Assert.True(result.TrackedSteps.TryGetValue(step, out var runs) && runs.SelectMany(r => r.Outputs).Any(), $"step {step} did not run");
            Assert.All(runs!.SelectMany(s => s.Outputs), o =>
                Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {o.Reason}"));
        }
        Assert.All(OutputReasons(result), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void Editing_one_model_reemits_only_that_model()
    {
        var (driver, compilation) = FirstRun(Sources.SeedModel, Sources.SeedSchedule);
        var oldTree = compilation.SyntaxTrees.First();
        var newTree = oldTree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(Sources.SeedModel.Replace("Heads = 4", "Heads = 8")));
        var result = driver.RunGenerators(compilation.ReplaceSyntaxTree(oldTree, newTree)).GetRunResult().Results.Single();

        var unet = Assert.Single(result.TrackedSteps[TrackingNames.UNetSpecs].SelectMany(s => s.Outputs));
        Assert.Equal(IncrementalStepRunReason.Modified, unet.Reason);
        var schedule = Assert.Single(result.TrackedSteps[TrackingNames.ScheduleSpecs].SelectMany(s => s.Outputs));
        Assert.True(schedule.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged);
        var reasons = OutputReasons(result).ToList();
        Assert.Equal(1, reasons.Count(r => r == IncrementalStepRunReason.Modified));
    }

    [Fact]
    public void Pipeline_values_hold_no_symbols_syntax_or_compilations()
    {
        var (_, compilation) = FirstRun(Sources.SeedModel, Sources.SeedSchedule);
        var result = GeneratorHarness.Driver().RunGenerators(compilation).GetRunResult().Results.Single();
        foreach (string step in Steps)
            foreach (var output in result.TrackedSteps[step].SelectMany(s => s.Outputs))
                GeneratorHarness.AssertPlainValues(output.Value, step);
    }
}
