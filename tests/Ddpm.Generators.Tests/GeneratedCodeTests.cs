using Microsoft.CodeAnalysis;

namespace Ddpm.Generators.Tests;

public class GeneratedCodeTests
{
    static string Generated(GeneratorRunResult result, string fileName) =>
        result.GeneratedSources.Single(s => Path.GetFileName(s.HintName) == fileName).SourceText.ToString();

    [Fact]
    public void Seed_model_generates_compiling_code_with_stable_names()
    {
        var (result, output) = GeneratorHarness.Run(new[] { Sources.SeedModel, Sources.SeedSchedule });
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Equal(new[] { "Ddpm.Models/FashionMnistSchedule.g.cs", "Ddpm.Models/FashionMnistUNet.g.cs" },
                     result.GeneratedSources.Select(s => s.HintName.Replace('\\', '/')).Order());
    }

    [Fact]
    public void Seed_model_snapshot()
    {
        var (result, _) = GeneratorHarness.Run(Sources.SeedModel);
        Snapshot.Verify(Generated(result, "FashionMnistUNet.g.cs"), "FashionMnistUNet.g");
    }

    [Fact]
    public void Seed_schedule_snapshot()
    {
        var (result, _) = GeneratorHarness.Run(Sources.SeedSchedule);
        Snapshot.Verify(Generated(result, "FashionMnistSchedule.g.cs"), "FashionMnistSchedule.g");
    }

    [Fact]
    public void Velocity_objective_with_clipping_schedule_snapshot()
    {
        // The attribute argument names the enum type while the generated class has a constant of the same name.
        const string source = """
            using Ddpm;
            namespace Samples;

            [NoiseSchedule(ScheduleKind.Linear, Timesteps = 8, BetaStart = 1e-3, BetaEnd = 0.2, Objective = Objective.V, ClipX0 = true)]
            public static partial class VelocitySchedule;
            """;
        var (result, output) = GeneratorHarness.Run(source);
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string code = Generated(result, "VelocitySchedule.g.cs");
        Assert.Contains("public const global::Ddpm.Objective Objective = global::Ddpm.Objective.V;", code);
        Assert.Contains("public const bool ClipX0 = true;", code);
        Assert.Contains("public const double DynamicThreshold = 0d;", code);
        Snapshot.Verify(code, "VelocitySchedule.g");
    }

    [Fact]
    public void Full_attention_at_every_stage_snapshot()
    {
        var (result, output) = GeneratorHarness.Run(Sources.FullAttentionModel);
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string code = Generated(result, "AllFullAttentionUNet.g.cs");
        Assert.DoesNotContain("LinearAttention", code);
        Snapshot.Verify(code, "AllFullAttentionUNet.g");
    }

    [Fact]
    public void Equal_class_names_in_two_namespaces_do_not_collide()
    {
        string a = Sources.FullAttentionModel;
        string b = Sources.FullAttentionModel.Replace("namespace Samples;", "namespace Others;");
        var (result, output) = GeneratorHarness.Run(new[] { a, b });
        Assert.Null(result.Exception);
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        Assert.Equal(2, result.GeneratedSources.Length);
    }

    [Fact]
    public void Output_is_deterministic_byte_for_byte()
    {
        var first = GeneratorHarness.Run(new[] { Sources.SeedModel, Sources.SeedSchedule }).Result;
        var second = GeneratorHarness.Run(new[] { Sources.SeedModel, Sources.SeedSchedule }).Result;
        Assert.Equal(first.GeneratedSources.Select(s => s.SourceText.ToString()), second.GeneratedSources.Select(s => s.SourceText.ToString()));
    }

    [Fact]
    public void Defaults_apply_when_no_stage_is_declared()
    {
        const string source = """
            using Ddpm;
            [UNet(Channels = 1, ImageSize = 32, Dim = 16, DimMults = new[] { 1, 2, 2, 4 })]
            public partial class DefaultsUNet;
            """;
        var (result, output) = GeneratorHarness.Run(source);
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string code = Generated(result, "DefaultsUNet.g.cs");
        // Default stages: 2 blocks + linear attention each; default mid: full attention.
        Assert.Contains("down3Block1 = new global::Ddpm.Blocks.ResnetBlock(32, 32", code);
        Assert.Contains("down3Attention = new global::Ddpm.Blocks.Residual(new global::Ddpm.Blocks.PreNorm(32, new global::Ddpm.Blocks.LinearAttention(32, heads: 4, dimHead: 32)))", code);
        Assert.Contains("midAttention = new global::Ddpm.Blocks.Residual(new global::Ddpm.Blocks.PreNorm(64, new global::Ddpm.Blocks.Attention(64, heads: 4, dimHead: 32)))", code);
    }

    [Fact]
    public void Collection_expressions_and_no_attention_stages_are_supported()
    {
        const string source = """
            using Ddpm;
            [UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = [1, 2])]
            [DownStage(0, Blocks = 3, Attention = AttentionKind.None)]
            [MidStage(Attention = AttentionKind.None)]
            public partial class PlainUNet;
            """;
        var (result, output) = GeneratorHarness.Run(source);
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string code = Generated(result, "PlainUNet.g.cs");
        Assert.DoesNotContain("down0Attention", code);
        Assert.DoesNotContain("midAttention", code);
        Assert.Contains("x = up1Block2.forward(global::TorchSharp.torch.cat(new[] { x, skip0_0 }, 1), t);", code);
    }
}
