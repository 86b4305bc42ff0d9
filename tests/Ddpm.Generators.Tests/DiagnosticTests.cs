using Microsoft.CodeAnalysis;

namespace Ddpm.Generators.Tests;

/// <summary>One test per diagnostic: its ID, severity, and the exact text it points at.</summary>
public class DiagnosticTests
{
    static Diagnostic Single(string source, string id)
    {
        var (result, _) = GeneratorHarness.Run(source);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Empty(result.GeneratedSources); // an invalid declaration generates nothing
        return diagnostic;
    }

    static void AssertPointsAt(Diagnostic diagnostic, string source, string text)
    {
        Assert.Equal("Source0.cs", diagnostic.Location.SourceTree?.FilePath ?? diagnostic.Location.GetLineSpan().Path);
        var span = diagnostic.Location.SourceSpan;
        Assert.Equal(text, source.Substring(span.Start, span.Length));
    }

    static string Model(string unetArgs, string extra = "", string modifiers = "public partial") => $$"""
        using Ddpm;
        [UNet({{unetArgs}})]
        {{extra}}
        {{modifiers}} class M;
        """;

    const string Ok = "Channels = 1, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 }";

    [Fact]
    public void DDPM001_class_not_partial()
    {
        string source = Model(Ok, modifiers: "public");
        var d = Single(source, "DDPM001");
        AssertPointsAt(d, source, "M");
        Assert.Contains("'M' must be declared partial", d.GetMessage());
    }

    [Fact]
    public void DDPM002_nested_class()
    {
        const string source = """
            using Ddpm;
            public partial class Outer
            {
                [UNet(Channels = 1, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 })]
                public partial class Inner { }
            }
            """;
        AssertPointsAt(Single(source, "DDPM002"), source, "Inner");
    }

    [Fact]
    public void DDPM003_stage_index_out_of_range()
    {
        string source = Model(Ok, "[DownStage(3, Attention = AttentionKind.Full)]");
        var d = Single(source, "DDPM003");
        AssertPointsAt(d, source, "3");
        Assert.Equal("Stage index 3 is out of range: the model has 3 stages (one per DimMults entry), so use 0 to 2", d.GetMessage());
    }

    [Fact]
    public void DDPM004_stage_index_repeated()
    {
        string source = Model(Ok, "[DownStage(1)]\n[DownStage(1, Blocks = 3)]");
        var d = Single(source, "DDPM004");
        var span = d.Location.SourceSpan;
        Assert.Equal(source.IndexOf("1, Blocks", StringComparison.Ordinal), span.Start); // the second declaration
    }

    [Fact]
    public void DDPM005_attention_heads_below_one()
    {
        string source = Model(Ok, "[Attention(Heads = 0)]");
        var d = Single(source, "DDPM005");
        AssertPointsAt(d, source, "Heads = 0");
        Assert.Equal("Heads must be >= 1, got 0", d.GetMessage());
    }

    [Fact]
    public void DDPM006_attention_head_size_below_one()
    {
        string source = Model(Ok, "[Attention(DimHead = -2)]");
        AssertPointsAt(Single(source, "DDPM006"), source, "DimHead = -2");
    }

    [Fact]
    public void DDPM007_channels_not_divisible_by_groups()
    {
        string source = Model("Channels = 1, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 }, ResnetBlockGroups = 8");
        var d = Single(source, "DDPM007");
        AssertPointsAt(d, source, "ResnetBlockGroups = 8");
        Assert.Equal("Dim has 28 channels, which ResnetBlockGroups = 8 does not divide; GroupNorm needs every channel count (28, 56, 112) divisible by the groups", d.GetMessage());
    }

    [Fact]
    public void DDPM008_image_size_not_divisible_by_downsampling()
    {
        string source = Model("Channels = 1, ImageSize = 30, Dim = 28, DimMults = new[] { 1, 2, 4 }");
        var d = Single(source, "DDPM008");
        AssertPointsAt(d, source, "ImageSize = 30");
        Assert.Equal("ImageSize = 30 must be divisible by 4 (the model halves it 2 times between stages); use for example 32", d.GetMessage());
    }

    [Fact]
    public void DDPM009_timesteps_below_one()
    {
        const string source = "using Ddpm;\n[NoiseSchedule(ScheduleKind.Linear, Timesteps = 0)]\npublic static partial class S;";
        var d = Single(source, "DDPM009");
        AssertPointsAt(d, source, "Timesteps = 0");
        Assert.Equal("Timesteps must be >= 1, got 0", d.GetMessage());
    }

    [Fact]
    public void DDPM010_beta_outside_the_open_unit_interval()
    {
        const string source = "using Ddpm;\n[NoiseSchedule(ScheduleKind.Linear, BetaEnd = 1.5)]\npublic static partial class S;";
        var d = Single(source, "DDPM010");
        AssertPointsAt(d, source, "BetaEnd = 1.5");
        Assert.Equal("BetaEnd must be in the open interval (0, 1), got 1.5", d.GetMessage());
    }

    [Fact]
    public void DDPM011_beta_start_after_beta_end()
    {
        const string source = "using Ddpm;\n[NoiseSchedule(ScheduleKind.Quadratic, BetaStart = 0.03, BetaEnd = 0.02)]\npublic static partial class S;";
        var d = Single(source, "DDPM011");
        AssertPointsAt(d, source, "BetaStart = 0.03");
        Assert.Equal("BetaStart (0.03) must not exceed BetaEnd (0.02); the variances of the forward process grow with t", d.GetMessage());
    }

    [Fact]
    public void DDPM012_unknown_schedule_kind()
    {
        const string source = "using Ddpm;\n[NoiseSchedule((ScheduleKind)7)]\npublic static partial class S;";
        var d = Single(source, "DDPM012");
        AssertPointsAt(d, source, "(ScheduleKind)7");
    }

    [Fact]
    public void DDPM013_sizes_below_one()
    {
        string source = Model("Channels = 0, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 }");
        AssertPointsAt(Single(source, "DDPM013"), source, "Channels = 0");
        string mults = Model("Channels = 1, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 0, 4 }");
        AssertPointsAt(Single(mults, "DDPM013"), mults, "0");
    }

    [Fact]
    public void DDPM014_no_stages()
    {
        string source = Model("Channels = 1, ImageSize = 28, Dim = 28, DimMults = new int[0]");
        AssertPointsAt(Single(source, "DDPM014"), source, "DimMults = new int[0]");
    }

    [Fact]
    public void DDPM015_unknown_attention_kind()
    {
        string source = Model(Ok, "[MidStage(Attention = (AttentionKind)5)]");
        AssertPointsAt(Single(source, "DDPM015"), source, "Attention = (AttentionKind)5");
    }

    [Fact]
    public void DDPM016_odd_dim()
    {
        string source = Model("Channels = 1, ImageSize = 28, Dim = 27, DimMults = new[] { 1, 2, 4 }, ResnetBlockGroups = 1");
        AssertPointsAt(Single(source, "DDPM016"), source, "Dim = 27");
    }

    static void AssertLineColumn(Diagnostic diagnostic, int line, int column)
    {
        var start = diagnostic.Location.GetLineSpan().StartLinePosition;
        Assert.Equal((line, column), (start.Line + 1, start.Character + 1));
    }

    static string Schedule(string args) => $"using Ddpm;\n[NoiseSchedule(ScheduleKind.Linear, Timesteps = 10, {args})]\npublic static partial class S;";

    [Fact]
    public void DDPM018_unknown_objective()
    {
        string source = Schedule("Objective = (Objective)7");
        var d = Single(source, "DDPM018");
        AssertPointsAt(d, source, "Objective = (Objective)7");
        AssertLineColumn(d, 2, 53);
        Assert.Equal("Unknown objective '7'; use Eps, X0 or V", d.GetMessage());
    }

    [Theory]
    [InlineData("1.0", "1")]
    [InlineData("-0.5", "-0.5")]
    [InlineData("double.NaN", "NaN")]
    [InlineData("double.PositiveInfinity", "Infinity")]
    public void DDPM301_dynamic_threshold_outside_zero_to_one(string value, string shown)
    {
        string source = Schedule("DynamicThreshold = " + value);
        var d = Single(source, "DDPM301");
        AssertPointsAt(d, source, "DynamicThreshold = " + value);
        AssertLineColumn(d, 2, 53);
        Assert.Equal($"DynamicThreshold must be in [0, 1) (the quantile of |x_0| per image, e.g. 0.995; 0 turns thresholding off), got {shown}", d.GetMessage());
    }

    [Fact]
    public void DDPM302_clip_x0_with_dynamic_threshold_at_the_threshold()
    {
        string source = Schedule("ClipX0 = true, DynamicThreshold = 0.995");
        var d = Single(source, "DDPM302");
        AssertPointsAt(d, source, "DynamicThreshold = 0.995");
        AssertLineColumn(d, 2, 68);
        Assert.Equal("ClipX0 and DynamicThreshold cannot be used together: dynamic thresholding already maps the predicted x_0 into [-1, 1]; choose one", d.GetMessage());

        // Either alone is fine, and so is clipping with the threshold spelled out as off.
        foreach (string ok in new[] { "ClipX0 = true", "DynamicThreshold = 0.995", "ClipX0 = true, DynamicThreshold = 0" })
        {
            var (result, output) = GeneratorHarness.Run(Schedule(ok));
            Assert.Empty(result.Diagnostics);
            Assert.Empty(GeneratorHarness.CompileErrors(output));
        }
    }

    [Fact]
    public void Several_problems_are_all_reported()
    {
        string source = Model("Channels = 0, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 }", "[Attention(Heads = 0, DimHead = 0)]", "public");
        var (result, _) = GeneratorHarness.Run(source);
        Assert.Equal(new[] { "DDPM001", "DDPM005", "DDPM006", "DDPM013" }, result.Diagnostics.Select(d => d.Id).Order());
    }

    [Fact]
    public void Broken_code_never_makes_the_generator_throw()
    {
        string[] broken =
        {
            "using Ddpm;\n[UNet(DimMults = null)]\npublic partial class A;",
            "using Ddpm;\n[UNet(Channels = \"x\")]\npublic partial class B;",
            "using Ddpm;\n[UNet(Dim = )]\npublic partial class C",
            "using Ddpm;\n[NoiseSchedule]\npublic static partial class D;",
            "using Ddpm;\n[NoiseSchedule(ScheduleKind.Cosine, Timesteps = int.MaxValue / 1000000)]\npublic static partial class E;",
            "using Ddpm;\n[UNet(ImageSize = 1 << 30, Dim = 2, DimMults = new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, ResnetBlockGroups = 1)]\npublic partial class F;",
        };
        foreach (string source in broken)
        {
            var (result, _) = GeneratorHarness.Run(source);
            Assert.Null(result.Exception);
            Assert.All(result.Diagnostics, d => Assert.StartsWith("DDPM", d.Id));
            Assert.DoesNotContain(result.Diagnostics, d => d.Id == "DDPM099");
        }
    }
}
