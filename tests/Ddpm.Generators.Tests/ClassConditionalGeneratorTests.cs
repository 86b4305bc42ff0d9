using Microsoft.CodeAnalysis;

namespace Ddpm.Generators.Tests;

/// <summary>
/// Class-conditional declarations (classes, class_dropout, guidance): the generated class embedding and forward, the same
/// code from YAML and from attributes, the architecture hash, and DDPM021-025 located where they are written.
/// </summary>
public class ClassConditionalGeneratorTests
{
    const string SpecPath = "specs/test.yaml";

    static string Yaml(string classLines) => YamlDiagnosticTests.Tiny.Replace("  dim_mults: [1, 2]\n", "  dim_mults: [1, 2]\n" + classLines);

    static Diagnostic SingleYaml(string yaml, string id)
    {
        var (result, _) = SpecFiles.Run(yaml);
        Assert.Null(result.Exception);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.DoesNotContain(result.GeneratedSources, s => s.HintName == "test/TinyUNet.g.cs");
        return diagnostic;
    }

    static void AssertYamlAt(Diagnostic diagnostic, string yaml, int line, string text)
    {
        FileLinePositionSpan span = diagnostic.Location.GetLineSpan();
        Assert.Equal(SpecPath, span.Path);
        Assert.Equal(line, span.StartLinePosition.Line + 1);
        Assert.Equal(text, yaml.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
    }

    static Diagnostic SingleAttribute(string unetArgs, string id, out string source)
    {
        source = $$"""
            using Ddpm;
            [UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }{{unetArgs}})]
            public partial class M;
            """;
        var (result, _) = GeneratorHarness.Run(source);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Empty(result.GeneratedSources);
        return diagnostic;
    }

    static string PointedAt(Diagnostic d, string source) => source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length);

    [Fact]
    public void A_conditional_spec_generates_an_embedding_with_a_null_class_added_to_the_time_embedding()
    {
        var (result, output) = SpecFiles.Run(Yaml("  classes: 3\n  class_dropout: 0.2\n  guidance: 2.5\n"));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string code = SpecFiles.Generated(result, "test/TinyUNet.g.cs");
        Assert.Contains(", global::Ddpm.Conditioning.IClassConditional", code);
        Assert.Contains("new global::Ddpm.Conditioning.ClassConditioning(3, 0.2, 2.5);", code);
        // 3 classes + the null class, each a row of the time embedding's width (4 x dim = 32).
        Assert.Contains("classEmbedding = global::TorchSharp.torch.nn.Embedding(4, 32); // row 3 is the null class", code);
        Assert.Contains("register_module(\"class_emb\", classEmbedding);", code);
        Assert.Contains("=> forward(images, timesteps, null);", code);
        Assert.Contains("labels ??= global::TorchSharp.torch.full(images.shape[0], 3L,", code);
        Assert.Contains("t = t + classEmbedding.forward(labels);", code);
        string catalog = SpecFiles.Generated(result, "test/TinyUNet.Catalog.g.cs");
        Assert.Contains("global::TinyUNet.ClassConditioning));", catalog);
        Snapshot.Verify(code, "ConditionalTinyUNet.g");
    }

    [Fact]
    public void The_parameter_count_adds_one_embedding_row_per_class_and_the_null_class()
    {
        static long Count(string yaml)
        {
            var (result, _) = SpecFiles.Run(yaml);
            string code = SpecFiles.Generated(result, "test/TinyUNet.g.cs");
            string line = code.Split('\n').Single(l => l.Contains("public const long ParameterCount"));
            return long.Parse(line.Split('=')[1].Trim().TrimEnd(';', 'L'));
        }
        Assert.Equal(Count(YamlDiagnosticTests.Tiny) + 4 * 32, Count(Yaml("  classes: 3\n")));
    }

    [Fact]
    public void Attributes_and_yaml_generate_the_same_conditional_model()
    {
        var (yamlResult, _) = SpecFiles.Run(Yaml("  classes: 3\n  guidance: 2\n"));
        const string attributes = """
            using Ddpm;
            [UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }, Classes = 3, Guidance = 2)]
            public partial class TinyUNet;
            """;
        var (attributeResult, output) = GeneratorHarness.Run(attributes);
        Assert.Empty(attributeResult.Diagnostics);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
        string fromAttributes = attributeResult.GeneratedSources.Single(s => s.HintName.EndsWith("TinyUNet.g.cs", StringComparison.Ordinal)).SourceText.ToString();
        string fromYaml = SpecFiles.Generated(yamlResult, "test/TinyUNet.g.cs");
        // Declared-by lines and accessibility differ by front end; the module itself does not.
        static string Body(string code) => code[code.IndexOf("public const int Channels", StringComparison.Ordinal)..];
        Assert.Equal(Body(fromYaml), Body(fromAttributes));
        Assert.Contains("ClassConditioning(3, 0.1, 2)", fromAttributes); // the dropout default, 0.1
    }

    [Fact]
    public void Unconditional_hashes_stay_and_classes_and_dropout_enter_the_hash_but_guidance_does_not()
    {
        var plain = Ddpm.Generators.SpecCore.SpecYaml.Read(YamlDiagnosticTests.Tiny);
        var conditional = Ddpm.Generators.SpecCore.SpecYaml.Read(Yaml("  classes: 3\n"));
        var otherDropout = Ddpm.Generators.SpecCore.SpecYaml.Read(Yaml("  classes: 3\n  class_dropout: 0.2\n"));
        var otherGuidance = Ddpm.Generators.SpecCore.SpecYaml.Read(Yaml("  classes: 3\n  guidance: 4\n"));
        Assert.DoesNotContain("classes", Ddpm.Generators.SpecCore.SpecYaml.CanonicalArchitecture(plain.Model, plain.Schedule));
        Assert.Contains("model.classes=3\nmodel.class_dropout=0.1\n", Ddpm.Generators.SpecCore.SpecYaml.CanonicalArchitecture(conditional.Model, conditional.Schedule));
        Assert.NotEqual(plain.ArchitectureHash, conditional.ArchitectureHash);
        Assert.NotEqual(conditional.ArchitectureHash, otherDropout.ArchitectureHash);
        Assert.Equal(conditional.ArchitectureHash, otherGuidance.ArchitectureHash);
    }

    [Fact]
    public void DDPM021_one_class_in_yaml_at_the_value()
    {
        string yaml = Yaml("  classes: 1\n");
        var d = SingleYaml(yaml, "DDPM021");
        AssertYamlAt(d, yaml, 7, "1");
        Assert.Equal("classes must be at least 2 (the number of classes of the training data), got 1; leave it out for an unconditional model", d.GetMessage());
    }

    [Fact]
    public void DDPM022_class_dropout_of_one_at_the_value()
    {
        string yaml = Yaml("  classes: 3\n  class_dropout: 1.0\n");
        var d = SingleYaml(yaml, "DDPM022");
        AssertYamlAt(d, yaml, 8, "1.0");
        Assert.Contains("class_dropout must be in [0, 1)", d.GetMessage());
    }

    [Fact]
    public void DDPM023_negative_guidance_at_the_attribute_argument()
    {
        var d = SingleAttribute(", Classes = 3, Guidance = -1.0", "DDPM023", out string source);
        Assert.Equal("Guidance = -1.0", PointedAt(d, source));
        Assert.Equal("Guidance must be at least 0 (1 = no guidance, 3 is typical), got -1", d.GetMessage());
    }

    [Fact]
    public void DDPM024_guidance_without_dropout_in_yaml_and_attributes()
    {
        string yaml = Yaml("  classes: 3\n  class_dropout: 0\n  guidance: 3\n");
        var d = SingleYaml(yaml, "DDPM024");
        AssertYamlAt(d, yaml, 9, "3");
        Assert.Equal("guidance = 3 extrapolates from the unconditional (null-class) prediction, which the model never learns with class_dropout = 0; " +
                     "set class_dropout above 0 (0.1 is usual) or guidance to 1", d.GetMessage());

        var a = SingleAttribute(", Classes = 3, ClassDropout = 0, Guidance = 3", "DDPM024", out string source);
        Assert.Equal("Guidance = 3", PointedAt(a, source));
        Assert.Contains("ClassDropout = 0", a.GetMessage());

        // Guidance 1 needs no null class: no diagnostic.
        var (ok, _) = SpecFiles.Run(Yaml("  classes: 3\n  class_dropout: 0\n  guidance: 1\n"));
        Assert.Empty(ok.Diagnostics);
    }

    [Fact]
    public void DDPM025_class_settings_without_classes()
    {
        string yaml = Yaml("  class_dropout: 0.1\n");
        var d = SingleYaml(yaml, "DDPM025");
        AssertYamlAt(d, yaml, 7, "0.1");
        Assert.Equal("class_dropout only applies to a class-conditional model; set classes to the number of classes, or remove class_dropout", d.GetMessage());

        var a = SingleAttribute(", Guidance = 2", "DDPM025", out string source);
        Assert.Equal("Guidance = 2", PointedAt(a, source));
        Assert.Equal("Guidance only applies to a class-conditional model; set Classes to the number of classes, or remove Guidance", a.GetMessage());
    }

    [Fact]
    public void Class_keys_of_the_wrong_type_are_DDPM103_at_the_value()
    {
        string yaml = Yaml("  classes: ten\n");
        var d = SingleYaml(yaml, "DDPM103");
        AssertYamlAt(d, yaml, 7, "ten");
    }
}
