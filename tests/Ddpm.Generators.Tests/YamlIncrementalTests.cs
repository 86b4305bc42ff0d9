using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using TrackingNames = Ddpm.Generators.TrackingNames;

namespace Ddpm.Generators.Tests;

/// <summary>The YAML steps cache like the attribute ones: C# edits leave specs alone, editing one spec redoes only it.</summary>
public class YamlIncrementalTests
{
    static readonly GeneratorHarness.InMemoryAdditionalText Fashion = new("specs/fashion-mnist.yaml", SpecFiles.Read("fashion-mnist.yaml"));
    static readonly GeneratorHarness.InMemoryAdditionalText Cosine = new("specs/mnist-cosine.yaml", SpecFiles.Read("mnist-cosine.yaml"));

    static (GeneratorDriver Driver, CSharpCompilation Compilation) FirstRun()
    {
        var compilation = GeneratorHarness.Compilation("public class Existing { }");
        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            new[] { new Ddpm.Generators.DdpmGenerator().AsSourceGenerator() }, new AdditionalText[] { Fashion, Cosine },
            GeneratorHarness.ParseOptions, driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));
        return (driver.RunGenerators(compilation), compilation);
    }

    static IncrementalStepRunReason[] Reasons(GeneratorRunResult result, string step) =>
        result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    [Fact]
    public void A_csharp_edit_reuses_every_yaml_result()
    {
        var (driver, compilation) = FirstRun();
        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("public class Unrelated { }", GeneratorHarness.ParseOptions));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        foreach (string step in new[] { TrackingNames.YamlSpecs, TrackingNames.CatalogSpecs, TrackingNames.UNetSpecs, TrackingNames.ScheduleSpecs })
            Assert.All(Reasons(result, step), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {r}"));
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs), o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void Editing_one_spec_reparses_only_it()
    {
        var (driver, compilation) = FirstRun();
        var edited = new GeneratorHarness.InMemoryAdditionalText(Fashion.Path, Fashion.GetText()!.ToString().Replace("heads: 4", "heads: 8"));
        var result = driver.ReplaceAdditionalText(Fashion, edited).RunGenerators(compilation).GetRunResult().Results.Single();

        Assert.Equal(1, Reasons(result, TrackingNames.YamlSpecs).Count(r => r == IncrementalStepRunReason.Modified));
        // The model changed; its schedule did not, so the schedule's code is not re-emitted.
        Assert.Equal(1, Reasons(result, TrackingNames.UNetSpecs).Count(r => r == IncrementalStepRunReason.Modified));
        Assert.DoesNotContain(IncrementalStepRunReason.Modified, Reasons(result, TrackingNames.ScheduleSpecs));
        Assert.Contains("heads: 8, dimHead: 32", SpecFiles.Generated(result, "fashion-mnist/FashionMnistUNet.g.cs"));
    }

    [Fact]
    public void Changing_the_objective_reemits_the_schedule_and_the_catalog_entry_but_not_the_model()
    {
        var (driver, compilation) = FirstRun();
        string text = Fashion.GetText()!.ToString();
        Assert.Contains("  beta_end: 0.02\n", text);
        var edited = new GeneratorHarness.InMemoryAdditionalText(Fashion.Path, text.Replace("  beta_end: 0.02\n", "  beta_end: 0.02\n  objective: v\n"));
        var result = driver.ReplaceAdditionalText(Fashion, edited).RunGenerators(compilation).GetRunResult().Results.Single();

        Assert.Equal(1, Reasons(result, TrackingNames.ScheduleSpecs).Count(r => r == IncrementalStepRunReason.Modified));
        Assert.DoesNotContain(IncrementalStepRunReason.Modified, Reasons(result, TrackingNames.UNetSpecs));
        // The architecture hash covers the objective, so the registration changes too.
        Assert.Equal(1, Reasons(result, TrackingNames.CatalogSpecs).Count(r => r == IncrementalStepRunReason.Modified));
        Assert.Contains("Objective = global::Ddpm.Objective.V;", SpecFiles.Generated(result, "fashion-mnist/FashionMnistSchedule.g.cs"));
    }

    [Fact]
    public void Yaml_pipeline_values_hold_no_symbols_syntax_or_compilations()
    {
        var (driver, _) = FirstRun();
        var result = driver.GetRunResult().Results.Single();
        foreach (string step in new[] { TrackingNames.YamlSpecs, TrackingNames.CatalogSpecs })
        {
            Assert.NotEmpty(result.TrackedSteps[step].SelectMany(s => s.Outputs));
            foreach (var output in result.TrackedSteps[step].SelectMany(s => s.Outputs))
                GeneratorHarness.AssertPlainValues(output.Value, step);
        }
    }
}
