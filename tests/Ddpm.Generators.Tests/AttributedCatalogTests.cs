using Microsoft.CodeAnalysis;

namespace Ddpm.Generators.Tests;

/// <summary>
/// [UNet(Schedule = typeof(...))] puts an attributed model into the model catalog as a YAML spec's model is: a
/// registration with the schedule, the declaring file and the same architecture hash a spec of that architecture gets.
/// </summary>
public class AttributedCatalogTests
{
    internal const string Declarations = """
        using Ddpm;
        namespace Demo;
        [UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4, Schedule = typeof(DemoSchedule))]
        [Attention(Heads = 2, DimHead = 8)]
        public partial class DemoUNet;
        [NoiseSchedule(ScheduleKind.Linear, Timesteps = 20, BetaStart = 1e-3, BetaEnd = 0.2)]
        public static partial class DemoSchedule;
        """;

    const string SameAsYaml = """
        # yaml-language-server: $schema=ddpm-spec.schema.json
        model:
          name: YamlDemoUNet
          namespace: Demo.Yaml
          channels: 1
          image_size: 8
          dim: 8
          dim_mults: [1, 2]
          resnet_block_groups: 4
          attention: { heads: 2, dim_head: 8 }
        schedule:
          kind: linear
          timesteps: 20
          beta_start: 1.0e-3
          beta_end: 0.2
        """;

    static string Source(GeneratorRunResult result, string hint) =>
        Assert.Single(result.GeneratedSources, s => s.HintName == hint).SourceText.ToString();

    static string Hash(string registration)
    {
        const string marker = "ArchitectureHash = \"";
        int start = registration.IndexOf(marker, StringComparison.Ordinal) + marker.Length;
        return registration.Substring(start, 16);
    }

    [Fact]
    public void A_model_that_names_its_schedule_registers_with_the_declaring_file_and_the_yaml_hash()
    {
        var (result, output) = GeneratorHarness.Run(new[] { Declarations }, ("specs/demo.yaml", SameAsYaml));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string registration = Source(result, "Demo/DemoUNetCatalogRegistration.g.cs");
        Assert.Contains("\"DemoUNet\",", registration);
        Assert.Contains("\"Source0.cs\",", registration);
        Assert.Contains("static () => new global::Demo.DemoUNet(),", registration);
        Assert.Contains("global::Demo.DemoSchedule.Diffusion,", registration);
        Assert.Contains("Dataset = \"fashion-mnist\",", registration); // the default training settings
        string yamlRegistration = Source(result, "demo/YamlDemoUNet.Catalog.g.cs");
        Assert.Matches("^[0-9a-f]{16}$", Hash(registration));
        Assert.Equal(Hash(yamlRegistration), Hash(registration));
    }

    [Fact]
    public void A_model_without_a_schedule_is_a_module_only()
    {
        var (result, output) = GeneratorHarness.Run(Declarations.Replace(", Schedule = typeof(DemoSchedule)", ""));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Equal(new[] { "Demo/DemoSchedule.g.cs", "Demo/DemoUNet.g.cs" }, result.GeneratedSources.Select(s => s.HintName).Order());
    }

    [Fact]
    public void An_invalid_schedule_registers_nothing_and_reports_at_the_schedule()
    {
        var (result, _) = GeneratorHarness.Run(Declarations.Replace("Timesteps = 20", "Timesteps = 0"));
        Assert.Equal("DDPM009", Assert.Single(result.Diagnostics).Id);
        Assert.DoesNotContain(result.GeneratedSources, s => s.HintName.Contains("CatalogRegistration", StringComparison.Ordinal));
    }

    [Fact]
    public void DDPM019_schedule_that_is_not_a_noise_schedule()
    {
        string source = Declarations.Replace("typeof(DemoSchedule)", "typeof(string)");
        var (result, _) = GeneratorHarness.Run(source);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(("DDPM019", DiagnosticSeverity.Error), (diagnostic.Id, diagnostic.Severity));
        Assert.Equal("DemoUNet's Schedule must be a class declared with [NoiseSchedule], got 'string'", diagnostic.GetMessage());
        var span = diagnostic.Location.SourceSpan;
        Assert.Equal("Schedule = typeof(string)", source.Substring(span.Start, span.Length));
        Assert.DoesNotContain(result.GeneratedSources, s => s.HintName.Contains("CatalogRegistration", StringComparison.Ordinal));
    }
}
