using Microsoft.CodeAnalysis;
using DiagnosticDescriptors = Ddpm.Generators.Diagnostics.DiagnosticDescriptors;
using SpecErrorKind = Ddpm.Generators.SpecCore.SpecErrorKind;
using SpecMessages = Ddpm.Generators.SpecCore.SpecMessages;

namespace Ddpm.Generators.Tests;

/// <summary>
/// Every YAML diagnostic (DDPM1xx) and the shared declaration rules (DDPM0xx) reached from YAML:
/// ID, severity, the spec file, and the line, column and text they point at.
/// </summary>
public class YamlDiagnosticTests
{
    const string Path = "specs/test.yaml";

    /// <summary>A small valid spec; tests replace one line of it.</summary>
    internal const string Tiny = """
        model:
          name: TinyUNet
          channels: 1
          image_size: 8
          dim: 8
          dim_mults: [1, 2]
        schedule:
          kind: linear
          timesteps: 10
        training:
          batch_size: 4
        """;

    static string With(string line, string replacement)
    {
        Assert.Contains(line, Tiny);
        return Tiny.Replace(line, replacement);
    }

    static Diagnostic Single(string yaml, string id)
    {
        var (result, _) = SpecFiles.Run(yaml);
        Assert.Null(result.Exception);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.DoesNotContain(result.GeneratedSources, s => s.HintName.EndsWith(".Catalog.g.cs", StringComparison.Ordinal));
        return diagnostic;
    }

    /// <summary>The diagnostic is in the spec file at 1-based line and column, over exactly <paramref name="text"/>.</summary>
    static void AssertAt(Diagnostic diagnostic, string yaml, int line, int column, string text)
    {
        FileLinePositionSpan span = diagnostic.Location.GetLineSpan();
        Assert.Equal(Path, span.Path);
        Assert.Equal((line, column), (span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1));
        Assert.Equal(text, yaml.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
    }

    [Fact]
    public void The_tiny_spec_is_valid_and_generates_a_model_a_schedule_and_a_catalog_entry()
    {
        var (result, output) = SpecFiles.Run(Tiny);
        Assert.Empty(result.Diagnostics);
        Assert.Equal(new[] { "test/TinySchedule.g.cs", "test/TinyUNet.Catalog.g.cs", "test/TinyUNet.g.cs" }, result.GeneratedSources.Select(s => s.HintName).Order());
        Assert.Empty(GeneratorHarness.CompileErrors(output));
    }

    [Fact]
    public void Spec_error_kinds_map_to_descriptors_with_the_shared_message_formats()
    {
        foreach (SpecErrorKind kind in Enum.GetValues<SpecErrorKind>())
        {
            DiagnosticDescriptor descriptor = DiagnosticDescriptors.For(kind);
            Assert.Equal(SpecMessages.Id(kind), descriptor.Id);
            Assert.Equal(SpecMessages.Format(kind), descriptor.MessageFormat.ToString());
            Assert.Equal(DiagnosticSeverity.Error, descriptor.DefaultSeverity);
        }
    }

    [Fact]
    public void DDPM101_malformed_yaml_at_the_parser_error_mark()
    {
        string yaml = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2");
        var d = Single(yaml, "DDPM101");
        // The flow sequence is still open when the next key starts; YamlDotNet gives up there.
        AssertAt(d, yaml, 7, 1, "");
        Assert.Equal("Invalid YAML: the parser cannot read on from here; look for an unclosed bracket or quote, or a misplaced ':'", d.GetMessage());
    }

    [Fact]
    public void DDPM101_bad_indentation_with_the_parser_message()
    {
        string yaml = With("  dim: 8", " dim: 8");
        var d = Single(yaml, "DDPM101");
        AssertAt(d, yaml, 5, 2, "");
        Assert.Equal("Invalid YAML: While parsing a block mapping, did not find expected key.", d.GetMessage());
    }

    [Fact]
    public void DDPM101_duplicate_key()
    {
        string yaml = With("  dim: 8", "  dim: 8\n  dim: 16");
        var d = Single(yaml, "DDPM101");
        FileLinePositionSpan span = d.Location.GetLineSpan();
        Assert.Equal((Path, 6, 3), (span.Path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1));
        Assert.Contains("Duplicate key", d.GetMessage());
    }

    [Fact]
    public void DDPM101_more_than_one_document()
    {
        string yaml = Tiny + "\n---\nmodel:\n  name: Other\n";
        var d = Single(yaml, "DDPM101");
        AssertAt(d, yaml, 13, 1, "model:\n  name: Other");
        Assert.Equal("Invalid YAML: a spec is one YAML document, found 2; remove the '---' separators", d.GetMessage());
    }

    [Fact]
    public void DDPM101_nesting_too_deep_for_the_parser_to_recurse()
    {
        // YamlDotNet builds its tree recursively: 100,000 levels would overflow the compiler's stack.
        string yaml = Tiny + "\n  steps: " + new string('[', 100_000) + new string(']', 100_000) + "\n";
        var d = Single(yaml, "DDPM101");
        AssertAt(d, yaml, 12, 72, "["); // the 63rd bracket, inside the root and training mappings
        Assert.Equal("Invalid YAML: mappings and lists are nested deeper than 64 levels", d.GetMessage());
    }

    [Fact]
    public void DDPM102_unknown_key_with_a_suggestion()
    {
        string yaml = With("  channels: 1", "  chanels: 1");
        var d = Single(yaml, "DDPM102");
        AssertAt(d, yaml, 3, 3, "chanels");
        Assert.Equal("Unknown key 'chanels' in 'model' (did you mean 'channels'?); allowed keys: name, namespace, channels, image_size, dim, " +
                     "dim_mults, resnet_block_groups, stages, mid, attention, classes, class_dropout, guidance", d.GetMessage());
    }

    [Fact]
    public void DDPM102_unknown_keys_at_the_root_in_stages_and_in_training()
    {
        string root = Tiny + "\ntrainig:\n  epochs: 1\n";
        var d = Single(root, "DDPM102");
        AssertAt(d, root, 12, 1, "trainig");
        Assert.StartsWith("Unknown key 'trainig' in the spec (did you mean 'training'?)", d.GetMessage());

        string stage = Tiny.Replace("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  stages:\n    - { attn: full }");
        d = Single(stage, "DDPM102");
        AssertAt(d, stage, 8, 9, "attn");
        Assert.StartsWith("Unknown key 'attn' in 'model.stages[0]' (did you mean 'attention'?); allowed keys: blocks, attention", d.GetMessage());

        string training = With("  batch_size: 4", "  batchsize: 4");
        d = Single(training, "DDPM102");
        AssertAt(d, training, 11, 3, "batchsize");
        Assert.Contains("(did you mean 'batch_size'?)", d.GetMessage());
    }

    [Fact]
    public void DDPM102_no_suggestion_when_nothing_is_close()
    {
        string yaml = With("  dim: 8", "  dim: 8\n  colour: red");
        var d = Single(yaml, "DDPM102");
        AssertAt(d, yaml, 6, 3, "colour");
        Assert.DoesNotContain("did you mean", d.GetMessage());
    }

    [Fact]
    public void DDPM103_a_string_where_a_number_belongs()
    {
        string yaml = With("  channels: 1", "  channels: one");
        var d = Single(yaml, "DDPM103");
        AssertAt(d, yaml, 3, 13, "one");
        Assert.Equal("'model.channels' must be an integer, got 'one'", d.GetMessage());
    }

    [Fact]
    public void DDPM103_quoted_numbers_lists_and_list_items()
    {
        string quoted = With("  image_size: 8", "  image_size: \"8\"");
        var d = Single(quoted, "DDPM103");
        AssertAt(d, quoted, 4, 15, "\"8\"");
        Assert.Equal("'model.image_size' must be an integer, got the quoted string '8'", d.GetMessage());

        string scalar = With("  dim_mults: [1, 2]", "  dim_mults: 2");
        d = Single(scalar, "DDPM103");
        AssertAt(d, scalar, 6, 14, "2");
        Assert.Equal("'model.dim_mults' must be a list of integers ([1, 2, 4]), got '2'", d.GetMessage());

        string item = With("  dim_mults: [1, 2]", "  dim_mults: [1, two]");
        d = Single(item, "DDPM103");
        AssertAt(d, item, 6, 18, "two");
        Assert.Equal("'model.dim_mults[1]' must be an integer, got 'two'", d.GetMessage());

        string mapping = With("schedule:\n  kind: linear\n  timesteps: 10", "schedule: linear");
        d = Single(mapping, "DDPM103");
        AssertAt(d, mapping, 7, 11, "linear");
        Assert.Equal("'schedule' must be a mapping (key: value lines or { key: value }), got 'linear'", d.GetMessage());
    }

    [Fact]
    public void DDPM103_aliases_that_refer_to_themselves_are_just_wrong_values()
    {
        // YAML anchors can build cycles (and exponentially shared trees); the reader never walks them blindly.
        string yaml = With("  dim_mults: [1, 2]", "  dim_mults: &loop [1, *loop]");
        var d = Single(yaml, "DDPM103");
        FileLinePositionSpan span = d.Location.GetLineSpan(); // an alias is its anchored node, the list itself
        Assert.Equal((Path, 6, 14), (span.Path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1));
        Assert.Equal("'model.dim_mults[1]' must be an integer, got a list", d.GetMessage());
    }

    [Fact]
    public void DDPM103_in_the_training_section()
    {
        string flip = With("  batch_size: 4", "  batch_size: 4\n  random_flip: yes");
        var d = Single(flip, "DDPM103");
        AssertAt(d, flip, 12, 16, "yes");
        Assert.Equal("'training.random_flip' must be true or false, got 'yes'", d.GetMessage());

        string lr = With("  batch_size: 4", "  batch_size: 4\n  optimizer: { lr: fast }");
        d = Single(lr, "DDPM103");
        AssertAt(d, lr, 12, 20, "fast");
        Assert.Equal("'training.optimizer.lr' must be a number, got 'fast'", d.GetMessage());
    }

    [Fact]
    public void DDPM104_missing_required_keys_at_their_section()
    {
        string model = With("  dim: 8\n", "");
        var d = Single(model, "DDPM104");
        AssertAt(d, model, 1, 1, "model");
        Assert.Equal("'model' is missing the required key 'dim' (the base channel count of the U-Net)", d.GetMessage());

        string schedule = With("  kind: linear\n", "");
        d = Single(schedule, "DDPM104");
        AssertAt(d, schedule, 7, 1, "schedule");
        Assert.Equal("'schedule' is missing the required key 'kind' (how the betas grow)", d.GetMessage());
    }

    [Fact]
    public void DDPM104_a_schedule_without_a_model_needs_a_name()
    {
        const string yaml = "schedule:\n  kind: cosine\n";
        var d = Single(yaml, "DDPM104");
        AssertAt(d, yaml, 1, 1, "schedule");
        Assert.Equal("'schedule' is missing the required key 'name' (the generated class name; required without a model section)", d.GetMessage());

        var (result, output) = SpecFiles.Run("schedule:\n  name: LoneSchedule\n  kind: cosine\n  timesteps: 20\n");
        Assert.Empty(result.Diagnostics);
        Assert.Equal("test/LoneSchedule.g.cs", Assert.Single(result.GeneratedSources).HintName);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
    }

    [Fact]
    public void DDPM105_unknown_enum_values_with_the_allowed_ones()
    {
        string mid = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  mid: { attention: ful }");
        var d = Single(mid, "DDPM105");
        AssertAt(d, mid, 7, 21, "ful");
        Assert.Equal("'model.mid.attention' has unknown value 'ful' (did you mean 'full'?); use none, linear or full", d.GetMessage());

        string kind = With("  kind: linear", "  kind: cosin");
        d = Single(kind, "DDPM105");
        AssertAt(d, kind, 8, 9, "cosin");
        Assert.Equal("'schedule.kind' has unknown value 'cosin' (did you mean 'cosine'?); use linear, cosine, quadratic or sigmoid", d.GetMessage());

        string loss = With("  batch_size: 4", "  loss: hubber");
        d = Single(loss, "DDPM105");
        AssertAt(d, loss, 11, 9, "hubber");
        Assert.Equal("'training.loss' has unknown value 'hubber' (did you mean 'huber'?); use huber, l2 or l1", d.GetMessage());

        string optimizer = With("  batch_size: 4", "  optimizer:\n    kind: sgd");
        d = Single(optimizer, "DDPM105");
        AssertAt(d, optimizer, 12, 11, "sgd");
        Assert.Equal("'training.optimizer.kind' has unknown value 'sgd'; use adam", d.GetMessage());

        string precision = With("  batch_size: 4", "  precision: fp64");
        d = Single(precision, "DDPM105");
        AssertAt(d, precision, 11, 14, "fp64");
        Assert.Equal("'training.precision' has unknown value 'fp64' (did you mean 'fp32'?); use fp32, bf16 or fp16", d.GetMessage());
    }

    [Fact]
    public void DDPM106_training_settings_out_of_range()
    {
        string batch = With("  batch_size: 4", "  batch_size: 0");
        var d = Single(batch, "DDPM106");
        AssertAt(d, batch, 11, 15, "0");
        Assert.Equal("'training.batch_size' must be >= 1, got 0", d.GetMessage());

        string ema = With("  batch_size: 4", "  ema_decay: 1.0");
        d = Single(ema, "DDPM106");
        AssertAt(d, ema, 11, 14, "1.0");
        Assert.Equal("'training.ema_decay' must be in [0, 1), got 1.0", d.GetMessage());

        string lr = With("  batch_size: 4", "  optimizer: { lr: 0 }");
        d = Single(lr, "DDPM106");
        AssertAt(d, lr, 11, 20, "0");
        Assert.Equal("'training.optimizer.lr' must be > 0, got 0", d.GetMessage());
    }

    [Fact]
    public void DDPM107_names_that_are_not_csharp_names()
    {
        string dashed = With("  name: TinyUNet", "  name: tiny-unet");
        var d = Single(dashed, "DDPM107");
        AssertAt(d, dashed, 2, 9, "tiny-unet");
        Assert.Equal("'model.name' must be a C# identifier (a letter or '_', then letters, digits or '_'), got 'tiny-unet'", d.GetMessage());

        string keyword = With("  name: TinyUNet", "  name: class");
        d = Single(keyword, "DDPM107");
        AssertAt(d, keyword, 2, 9, "class");
        Assert.Equal("'model.name' must be a C# identifier that is not a keyword, got 'class'", d.GetMessage());

        string ns = With("  name: TinyUNet", "  name: TinyUNet\n  namespace: My..Models");
        d = Single(ns, "DDPM107");
        AssertAt(d, ns, 3, 14, "My..Models");

        string same = With("  kind: linear", "  name: TinyUNet\n  kind: linear");
        d = Single(same, "DDPM107");
        AssertAt(d, same, 8, 9, "TinyUNet");
        Assert.Equal("'schedule.name' must be a name other than model.name, got 'TinyUNet'", d.GetMessage());
    }

    // The declaration rules are SpecValidator's, shared with the attribute front end; from YAML they
    // point at the YAML value and name the YAML key.

    [Fact]
    public void DDPM003_more_stage_entries_than_dim_mults_at_the_extra_entry()
    {
        string yaml = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  stages:\n    - { attention: none }\n    - { attention: full }\n    - { blocks: 1 }");
        var d = Single(yaml, "DDPM003");
        AssertAt(d, yaml, 10, 7, "{ blocks: 1 }");
        Assert.Equal("Stage index 2 is out of range: the model has 2 stages (one per dim_mults entry), so use 0 to 1", d.GetMessage());
    }

    [Fact]
    public void DDPM005_and_DDPM006_attention_sizes()
    {
        string heads = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  attention: { heads: 0, dim_head: 8 }");
        var d = Single(heads, "DDPM005");
        AssertAt(d, heads, 7, 23, "0");
        Assert.Equal("attention.heads must be >= 1, got 0", d.GetMessage());

        string dimHead = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  attention: { dim_head: -1 }");
        AssertAt(Single(dimHead, "DDPM006"), dimHead, 7, 26, "-1");
    }

    [Fact]
    public void DDPM007_groups_not_dividing_the_channels()
    {
        string yaml = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  resnet_block_groups: 3");
        var d = Single(yaml, "DDPM007");
        AssertAt(d, yaml, 7, 24, "3");
        Assert.Equal("dim has 8 channels, which resnet_block_groups = 3 does not divide; GroupNorm needs every channel count (8, 16) divisible by the groups", d.GetMessage());
    }

    [Fact]
    public void DDPM008_image_size_not_divisible()
    {
        string yaml = With("  image_size: 8", "  image_size: 9");
        var d = Single(yaml, "DDPM008");
        AssertAt(d, yaml, 4, 15, "9");
        Assert.Equal("image_size = 9 must be divisible by 2 (the model halves it 1 times between stages); use for example 10", d.GetMessage());
    }

    [Fact]
    public void DDPM009_to_DDPM011_schedule_rules()
    {
        string timesteps = With("  timesteps: 10", "  timesteps: 0");
        var d = Single(timesteps, "DDPM009");
        AssertAt(d, timesteps, 9, 14, "0");
        Assert.Equal("timesteps must be >= 1, got 0", d.GetMessage());

        string beta = With("  timesteps: 10", "  timesteps: 10\n  beta_end: 1.5");
        d = Single(beta, "DDPM010");
        AssertAt(d, beta, 10, 13, "1.5");
        Assert.Equal("beta_end must be in the open interval (0, 1), got 1.5", d.GetMessage());

        string order = With("  timesteps: 10", "  timesteps: 10\n  beta_start: 0.03\n  beta_end: 0.02");
        d = Single(order, "DDPM011");
        AssertAt(d, order, 10, 15, "0.03");
        Assert.Equal("beta_start (0.03) must not exceed beta_end (0.02); the variances of the forward process grow with t", d.GetMessage());
    }

    [Fact]
    public void DDPM013_DDPM014_DDPM016_sizes()
    {
        string channels = With("  channels: 1", "  channels: 0");
        var d = Single(channels, "DDPM013");
        AssertAt(d, channels, 3, 13, "0");
        Assert.Equal("channels must be >= 1, got 0", d.GetMessage());

        string mult = With("  dim_mults: [1, 2]", "  dim_mults: [1, 0]");
        AssertAt(Single(mult, "DDPM013"), mult, 6, 18, "0");

        string none = With("  dim_mults: [1, 2]", "  dim_mults: []");
        AssertAt(Single(none, "DDPM014"), none, 6, 14, "[]");

        string odd = With("  dim: 8", "  dim: 7");
        AssertAt(Single(odd, "DDPM016"), odd, 5, 8, "7");
    }

    [Fact]
    public void DDPM017_settings_too_large_to_generate_from_yaml_and_from_attributes()
    {
        string timesteps = With("  timesteps: 10", "  timesteps: 800000");
        var d = Single(timesteps, "DDPM017");
        AssertAt(d, timesteps, 9, 14, "800000");
        Assert.Equal("timesteps must be <= 10000, got 800000; the generator writes every table entry and block out as code", d.GetMessage());

        string blocks = With("  dim_mults: [1, 2]", "  dim_mults: [1, 2]\n  stages:\n    - { blocks: 65 }");
        d = Single(blocks, "DDPM017");
        AssertAt(d, blocks, 8, 17, "65");
        Assert.StartsWith("stages[0].blocks must be <= 64, got 65", d.GetMessage());

        // The rule is SpecValidator's, so the attributes get it too, in their own words.
        const string source = "using Ddpm;\n[NoiseSchedule(ScheduleKind.Linear, Timesteps = 20000)]\npublic static partial class S;";
        var (result, _) = GeneratorHarness.Run(source);
        var attribute = Assert.Single(result.Diagnostics);
        Assert.Equal("DDPM017", attribute.Id);
        Assert.StartsWith("Timesteps must be <= 10000, got 20000", attribute.GetMessage());
    }

    // The schedule's sampling settings: DDPM3xx from SpecValidator (shared with the attributes),
    // DDPM103 and DDPM105 from the reader for wrong types and unknown names.

    [Theory]
    [InlineData("1.5")]
    [InlineData("1")]
    [InlineData("-0.01")]
    public void DDPM301_dynamic_threshold_outside_zero_to_one_at_the_value(string value)
    {
        string yaml = With("  timesteps: 10", "  timesteps: 10\n  dynamic_threshold: " + value);
        var d = Single(yaml, "DDPM301");
        AssertAt(d, yaml, 10, 22, value);
        Assert.Equal($"dynamic_threshold must be in [0, 1) (the quantile of |x_0| per image, e.g. 0.995; 0 turns thresholding off), got {double.Parse(value, System.Globalization.CultureInfo.InvariantCulture).ToString("R", System.Globalization.CultureInfo.InvariantCulture)}",
                     d.GetMessage());
    }

    [Fact]
    public void DDPM302_clip_x0_with_dynamic_threshold_at_the_threshold()
    {
        string yaml = With("  timesteps: 10", "  timesteps: 10\n  clip_x0: true\n  dynamic_threshold: 0.995");
        var d = Single(yaml, "DDPM302");
        AssertAt(d, yaml, 11, 22, "0.995");
        Assert.Equal("clip_x0 and dynamic_threshold cannot be used together: dynamic thresholding already maps the predicted x_0 into [-1, 1]; choose one", d.GetMessage());

        foreach (string ok in new[] { "  clip_x0: true", "  dynamic_threshold: 0.995", "  clip_x0: true\n  dynamic_threshold: 0", "  clip_x0: false\n  dynamic_threshold: 0.9" })
        {
            var (result, output) = SpecFiles.Run(With("  timesteps: 10", "  timesteps: 10\n" + ok));
            Assert.Empty(result.Diagnostics);
            Assert.Empty(GeneratorHarness.CompileErrors(output));
        }
    }

    [Fact]
    public void DDPM105_and_DDPM103_for_the_schedule_sampling_keys()
    {
        string objective = With("  timesteps: 10", "  timesteps: 10\n  objective: x_0");
        var d = Single(objective, "DDPM105");
        AssertAt(d, objective, 10, 14, "x_0");
        Assert.Equal("'schedule.objective' has unknown value 'x_0' (did you mean 'x0'?); use eps, x0 or v", d.GetMessage());

        string upper = With("  timesteps: 10", "  timesteps: 10\n  objective: V");
        d = Single(upper, "DDPM105");
        AssertAt(d, upper, 10, 14, "V");
        Assert.Contains("(did you mean 'v'?)", d.GetMessage());

        string clip = With("  timesteps: 10", "  timesteps: 10\n  clip_x0: yes");
        d = Single(clip, "DDPM103");
        AssertAt(d, clip, 10, 12, "yes");
        Assert.Equal("'schedule.clip_x0' must be true or false, got 'yes'", d.GetMessage());

        string threshold = With("  timesteps: 10", "  timesteps: 10\n  dynamic_threshold: high");
        d = Single(threshold, "DDPM103");
        AssertAt(d, threshold, 10, 22, "high");
        Assert.Equal("'schedule.dynamic_threshold' must be a number, got 'high'", d.GetMessage());
    }

    [Fact]
    public void DDPM105_DDPM106_DDPM103_and_DDPM102_for_the_training_quality_keys()
    {
        (string Line, string Id, int Column, string Text, string Message)[] cases =
        {
            ("  min_snr_gamma: -1", "DDPM106", 18, "-1", "'training.min_snr_gamma' must be >= 0, got -1"),
            ("  ema_power: 0", "DDPM106", 14, "0", "'training.ema_power' must be > 0, got 0"),
            ("  ema_inv_gamma: -2", "DDPM106", 18, "-2", "'training.ema_inv_gamma' must be > 0, got -2"),
            ("  ema_warmup: linear", "DDPM105", 15, "linear", "'training.ema_warmup' has unknown value 'linear'; use power, ratio or none"),
            ("  ema_warmup: rato", "DDPM105", 15, "rato", "'training.ema_warmup' has unknown value 'rato' (did you mean 'ratio'?); use power, ratio or none"),
            ("  eval: { every: -1 }", "DDPM106", 18, "-1", "'training.eval.every' must be >= 0, got -1"),
            ("  eval: { samples: 1 }", "DDPM106", 20, "1", "'training.eval.samples' must be >= 2, got 1"),
            ("  eval: { steps: 0 }", "DDPM106", 18, "0", "'training.eval.steps' must be >= 1, got 0"),
            ("  eval: { sampler: dpmpp_2m }", "DDPM105", 20, "dpmpp_2m", "'training.eval.sampler' has unknown value 'dpmpp_2m' (did you mean 'dpmpp-2m'?); use ddpm, ddim, dpmpp-2m or dpmpp-2m-sde"),
            ("  eval: { steps: 2.5 }", "DDPM103", 18, "2.5", "'training.eval.steps' must be an integer, got '2.5'"),
            ("  eval: 1000", "DDPM103", 9, "1000", "'training.eval' must be a mapping (key: value lines or { key: value }), got '1000'"),
            ("  eval: { sample: 4 }", "DDPM102", 11, "sample", "Unknown key 'sample' in 'training.eval' (did you mean 'samples'?); allowed keys: every, samples, sampler, steps"),
            ("  log: [tensorboard, tensorbord]", "DDPM105", 22, "tensorbord", "'training.log[1]' has unknown value 'tensorbord' (did you mean 'tensorboard'?); use tensorboard"),
            ("  log: [wandb]", "DDPM105", 9, "wandb", "'training.log[0]' has unknown value 'wandb'; use tensorboard"),
            ("  log: tensorboard", "DDPM103", 8, "tensorboard", "'training.log' must be a list such as [tensorboard], got 'tensorboard'"),
            ("  log: [[tensorboard]]", "DDPM103", 9, "[tensorboard]", "'training.log[0]' must be one of tensorboard, got a list"),
        };
        foreach (var (line, id, column, text, message) in cases)
        {
            string yaml = With("  batch_size: 4", "  batch_size: 4\n" + line);
            var d = Single(yaml, id);
            AssertAt(d, yaml, 12, column, text);
            Assert.Equal(message, d.GetMessage());
        }
    }

    /// <summary>Where a number key of each section is written in the tiny spec.</summary>
    static string WithNumber(string section, string key, string value) => section switch
    {
        "schedule" => With("  timesteps: 10", $"  timesteps: 10\n  {key}: {value}"),
        "model" => With("  dim_mults: [1, 2]", $"  dim_mults: [1, 2]\n  classes: 3\n  {key}: {value}"),
        "training" => With("  batch_size: 4", $"  batch_size: 4\n  {key}: {value}"),
        "training.optimizer" => With("  batch_size: 4", $"  batch_size: 4\n  optimizer: {{ {key}: {value} }}"),
        _ => throw new InvalidOperationException($"section '{section}' has number keys; add it here"),
    };

    [Theory]
    [InlineData("NaN", "a finite number")]
    [InlineData("Infinity", "a finite number")]
    [InlineData("-Infinity", "a finite number")]
    [InlineData("1e400", "a finite number")]
    [InlineData(".nan", "a number")]
    [InlineData(".inf", "a number")]
    [InlineData("-.inf", "a number")]
    public void Every_number_key_rejects_nan_and_infinities_at_the_value(string value, string expected)
    {
        var keys = Ddpm.Generators.SpecCore.SpecYaml.Sections
            .SelectMany(section => section.Value.Where(k => k.Type == Ddpm.Generators.SpecCore.SpecValueType.Number).Select(k => (Section: section.Key, k.Name)))
            .ToList();
        Assert.Contains(("schedule", "dynamic_threshold"), keys);
        Assert.Contains(("model", "class_dropout"), keys);
        Assert.Contains(("model", "guidance"), keys);
        Assert.Contains(("training", "min_snr_gamma"), keys);
        Assert.Contains(("training", "ema_power"), keys);
        Assert.Contains(("training", "ema_inv_gamma"), keys);
        foreach (var (section, key) in keys)
        {
            string yaml = WithNumber(section, key, value);
            var d = Single(yaml, "DDPM103");
            FileLinePositionSpan span = d.Location.GetLineSpan();
            Assert.Equal(Path, span.Path);
            Assert.Equal(value, yaml.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
            Assert.Equal($"'{section}.{key}' must be {expected}, got '{value}'", d.GetMessage());
        }
    }

    [Fact]
    public void Several_problems_are_all_reported_and_nothing_is_generated_for_the_broken_section()
    {
        string yaml = With("  channels: 1", "  channels: x\n  heads: 4") + "\n  loss: fast\n";
        var (result, _) = SpecFiles.Run(yaml);
        Assert.Equal(new[] { "DDPM102", "DDPM103", "DDPM105" }, result.Diagnostics.Select(d => d.Id).Order());
        // The schedule is fine and still generated; the model and the catalog entry are not.
        Assert.Equal("test/TinySchedule.g.cs", Assert.Single(result.GeneratedSources).HintName);
    }

    [Fact]
    public void A_training_error_keeps_the_model_but_not_the_catalog_entry()
    {
        var (result, _) = SpecFiles.Run(With("  batch_size: 4", "  batch_size: -4"));
        Assert.Equal("DDPM106", Assert.Single(result.Diagnostics).Id);
        Assert.Equal(new[] { "test/TinySchedule.g.cs", "test/TinyUNet.g.cs" }, result.GeneratedSources.Select(s => s.HintName).Order());
    }

    [Fact]
    public void Yaml_that_is_not_a_spec_is_ignored_silently()
    {
        var (result, _) = SpecFiles.Run(
            ("config/ci.yaml", "name: build\non: [push]\njobs:\n  test: { runs-on: linux }\n"),
            ("config/broken.yml", "steps: [1, 2\n"),
            ("config/list.yaml", "- model\n- schedule\n"),
            ("config/empty.yaml", ""),
            ("specs/notes.txt", "model:\n  name: [\n"));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void Yml_files_are_specs_too()
    {
        var (result, _) = SpecFiles.Run(("specs/tiny.yml", Tiny));
        Assert.Empty(result.Diagnostics);
        Assert.Equal(3, result.GeneratedSources.Length);
    }
}

/// <summary>DDPM020: a spec's class that an attributed class or another spec also generates.</summary>
public class GeneratedNameClashTests
{
    /// <summary>The tiny spec in namespace App.</summary>
    static readonly string Spec = YamlDiagnosticTests.Tiny.Replace("  name: TinyUNet\n", "  name: TinyUNet\n  namespace: App\n");

    [Fact]
    public void A_spec_schedule_named_like_an_attributed_schedule_reports_DDPM020_at_the_model_name_and_generates_nothing()
    {
        const string attributed = """
            using Ddpm;
            namespace App;
            [NoiseSchedule(ScheduleKind.Cosine, Timesteps = 20)]
            public static partial class TinySchedule;
            """;
        var (result, output) = GeneratorHarness.Run(new[] { attributed }, ("specs/tiny.yaml", Spec));
        Assert.Contains("namespace: App", Spec);
        var clash = Assert.Single(result.Diagnostics);
        Assert.Equal("DDPM020", clash.Id);
        Assert.Equal("tiny.yaml generates App.TinySchedule, which an attributed class also declares; rename one of them " +
                     "(a spec's schedule is named after its model unless schedule.name says otherwise)", clash.GetMessage());
        var at = clash.Location.GetLineSpan();
        Assert.Equal(("specs/tiny.yaml", 2, 9), (at.Path, at.StartLinePosition.Line + 1, at.StartLinePosition.Character + 1));
        // The spec generates nothing; the attributed schedule keeps its code and compiles.
        Assert.Equal(["App/TinySchedule.g.cs"], result.GeneratedSources.Select(s => s.HintName));
        Assert.Empty(GeneratorHarness.CompileErrors(output));
    }

    [Fact]
    public void Two_specs_of_one_model_name_report_DDPM020_each_and_a_distinct_schedule_name_resolves_it()
    {
        var (result, _) = GeneratorHarness.Run(Array.Empty<string>(), ("specs/a.yaml", Spec), ("specs/b.yaml", Spec));
        Assert.Equal(["DDPM020", "DDPM020", "DDPM020", "DDPM020"], result.Diagnostics.Select(d => d.Id)); // model and schedule, in each
        Assert.Contains(result.Diagnostics, d => d.GetMessage().StartsWith("a.yaml generates App.TinyUNet, which spec b.yaml also declares", StringComparison.Ordinal));
        Assert.Empty(result.GeneratedSources);

        var renamed = Spec.Replace("name: TinyUNet", "name: OtherUNet");
        var (fixedResult, output) = GeneratorHarness.Run(Array.Empty<string>(), ("specs/a.yaml", Spec), ("specs/b.yaml", renamed));
        Assert.Empty(fixedResult.Diagnostics);
        Assert.Equal(6, fixedResult.GeneratedSources.Length);
        Assert.Empty(GeneratorHarness.CompileErrors(output));
    }
}
