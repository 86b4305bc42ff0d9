using System.Globalization;
using System.Text.Json.Nodes;
using Ddpm.Specs;
using Json.Schema;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ddpm.Generators.Tests;

/// <summary>
/// specs/ddpm-spec.schema.json (JSON Schema 2020-12, validated here with JsonSchema.Net 7.4.0) accepts
/// every shipped spec, rejects what the reader rejects, and lists exactly the reader's keys.
/// </summary>
public class SchemaTests
{
    static readonly Lazy<JsonObject> SchemaJson = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(SpecFiles.Folder(), "ddpm-spec.schema.json")))!);
    static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromText(SchemaJson.Value.ToJsonString()));

    static EvaluationResults Evaluate(string yaml) =>
        Schema.Value.Evaluate(YamlToJson(yaml), new EvaluationOptions { OutputFormat = OutputFormat.List });

    static string Errors(EvaluationResults results) =>
        string.Join("\n", results.Details.Where(d => d.HasErrors).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}")));

    [Theory]
    [InlineData("fashion-mnist.yaml")]
    [InlineData("cifar10.yaml")]
    [InlineData("mnist-cosine.yaml")]
    public void Every_shipped_spec_is_valid_and_points_to_the_schema(string name)
    {
        string yaml = SpecFiles.Read(name);
        Assert.StartsWith("# yaml-language-server: $schema=ddpm-spec.schema.json\n", yaml);
        var results = Evaluate(yaml);
        Assert.True(results.IsValid, Errors(results));
    }

    [Fact]
    public void Every_shipped_spec_is_in_the_test()
    {
        var shipped = Directory.GetFiles(SpecFiles.Folder(), "*.yaml").Select(Path.GetFileName).Order();
        Assert.Equal(SpecFiles.Names.Order(), shipped);
    }

    [Theory]
    [InlineData("  channels: 1", "  chanels: 1")]              // unknown key
    [InlineData("  channels: 1", "  channels: one")]           // wrong type
    [InlineData("  image_size: 28", "  image_size: \"28\"")]   // a quoted number is a string
    [InlineData("  dim: 28\n", "")]                             // missing required key
    [InlineData("  kind: linear", "  kind: cosin")]             // unknown enum value
    [InlineData("  loss: huber", "  loss: hubber")]
    [InlineData("  batch_size: 128", "  batch_size: 0")]        // out of range
    [InlineData("  random_flip: true", "  random_flip: yes")]
    [InlineData("    - { attention: linear }\n  mid", "    - { attention: linear, index: 2 }\n  mid")]
    [InlineData("  beta_end: 0.02", "  beta_end: 0.02\n  objective: epsilon")]
    [InlineData("  beta_end: 0.02", "  beta_end: 0.02\n  clip_x0: 1")]
    [InlineData("  beta_end: 0.02", "  beta_end: 0.02\n  dynamic_threshold: high")]
    [InlineData("  batch_size: 128", "  batch_size: 128\n  min_snr_gamma: -1")]
    [InlineData("  batch_size: 128", "  batch_size: 128\n  ema_warmup: linear")]
    [InlineData("  batch_size: 128", "  batch_size: 128\n  ema_power: 0")]
    [InlineData("  batch_size: 128", "  batch_size: 128\n  ema_inv_gamma: -1")]
    [InlineData("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", "  eval: { samples: 1 }")]
    [InlineData("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", "  eval: { every: -5 }")]
    [InlineData("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", "  eval: { steps: 0 }")]
    [InlineData("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", "  eval: { sampler: euler }")]
    [InlineData("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", "  eval: { sample: 4 }")]
    [InlineData("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", "  eval: 1000")]
    [InlineData("  batch_size: 128", "  batch_size: 128\n  log: [tensorbord]")]
    [InlineData("  batch_size: 128", "  batch_size: 128\n  log: tensorboard")]
    public void The_schema_rejects_what_the_reader_rejects(string line, string replacement)
    {
        string original = SpecFiles.Read("fashion-mnist.yaml");
        Assert.Contains(line, original);
        string yaml = original.Replace(line, replacement);
        Assert.False(Evaluate(yaml).IsValid);
        Assert.NotEmpty(SpecYaml.Read(yaml).Errors);
    }

    [Fact]
    public void The_schema_accepts_every_quality_key_at_a_valid_value()
    {
        string yaml = SpecFiles.Read("fashion-mnist.yaml")
            .Replace("  beta_end: 0.02", "  beta_end: 0.02\n  objective: v\n  clip_x0: true\n  dynamic_threshold: 0")
            .Replace("  batch_size: 128", "  batch_size: 128\n  min_snr_gamma: 5\n  ema_warmup: ratio\n  ema_power: 0.75\n  ema_inv_gamma: 1\n  log: [tensorboard]");
        Assert.Contains("  eval: { every: 1000, samples: 256, sampler: dpmpp-2m, steps: 20 }", yaml);
        var results = Evaluate(yaml);
        Assert.True(results.IsValid, Errors(results));
        Assert.Empty(SpecYaml.Read(yaml).Errors);
    }

    /// <summary>The generator's schedule rules (DDPM301, DDPM302) that the schema can state: the editor flags them as the build does.</summary>
    [Theory]
    [InlineData("  dynamic_threshold: 1", false, "DDPM301")]
    [InlineData("  dynamic_threshold: -0.1", false, "DDPM301")]
    [InlineData("  clip_x0: true\n  dynamic_threshold: 0.995", false, "DDPM302")]
    [InlineData("  clip_x0: true\n  dynamic_threshold: 0", true, null)]
    [InlineData("  clip_x0: false\n  dynamic_threshold: 0.995", true, null)]
    [InlineData("  dynamic_threshold: 0.995", true, null)]
    public void The_schema_states_the_generators_threshold_rules(string lines, bool valid, string? id)
    {
        string yaml = SpecFiles.Read("fashion-mnist.yaml").Replace("  beta_end: 0.02", "  beta_end: 0.02\n" + lines);
        Assert.Equal(valid, Evaluate(yaml).IsValid);
        var (result, _) = SpecFiles.Run(("specs/fashion-mnist.yaml", yaml));
        Assert.Equal(id == null ? Array.Empty<string>() : new[] { id }, result.Diagnostics.Select(d => d.Id));
    }

    /// <summary>Section path of the reader's key table -> the schema object that describes it.</summary>
    static JsonObject SchemaSection(string section)
    {
        JsonObject node = SchemaJson.Value;
        if (section.Length == 0) return node;
        foreach (string part in section.Split('.'))
        {
            bool list = part.EndsWith("[]", StringComparison.Ordinal);
            node = Resolve(node["properties"]![list ? part[..^2] : part]!.AsObject());
            if (list) node = Resolve(node["items"]!.AsObject());
        }
        return node;
    }

    static JsonObject Resolve(JsonObject node)
    {
        if (node["$ref"] is JsonValue reference)
        {
            string name = reference.GetValue<string>()["#/$defs/".Length..];
            return SchemaJson.Value["$defs"]![name]!.AsObject();
        }
        return node;
    }

    [Fact]
    public void The_schema_and_the_reader_agree_on_every_section_key_requirement_type_and_enumeration()
    {
        foreach (var (section, keys) in SpecYaml.Sections)
        {
            JsonObject schema = SchemaSection(section);
            Assert.Equal(false, schema["additionalProperties"]?.GetValue<bool>());
            var properties = schema["properties"]!.AsObject();
            Assert.Equal(keys.Select(k => k.Name).Order(), properties.Select(p => p.Key).Order());

            var required = schema["required"]?.AsArray().Select(r => r!.GetValue<string>()) ?? Enumerable.Empty<string>();
            Assert.Equal(keys.Where(k => k.Required).Select(k => k.Name).Order(), required.Order());

            foreach (SpecKey key in keys)
            {
                JsonObject property = Resolve(properties[key.Name]!.AsObject());
                string where = $"{section}.{key.Name}";
                Assert.True(property["description"] != null || properties[key.Name]!["description"] != null, $"{where} has no description");
                if (key.Type == SpecValueType.Enum)
                    Assert.Equal(key.Values, property["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
                else
                {
                    string expected = key.Type switch
                    {
                        SpecValueType.Mapping => "object",
                        SpecValueType.List => "array",
                        SpecValueType.Integer => "integer",
                        SpecValueType.Number => "number",
                        SpecValueType.Boolean => "boolean",
                        _ => "string",
                    };
                    JsonNode type = property["type"]!;
                    string first = type is JsonArray types ? types[0]!.GetValue<string>() : type.GetValue<string>();
                    Assert.True(expected == first, $"{where}: schema type {first}, reader type {expected}");
                }
            }
        }
    }

    [Fact]
    public void The_schema_lists_no_section_the_reader_lacks()
    {
        var objects = new List<string>();
        Walk(SchemaJson.Value, "", objects);
        Assert.Equal(SpecYaml.Sections.Keys.Order(), objects.Order());

        static void Walk(JsonObject node, string path, List<string> found)
        {
            node = Resolve(node);
            if (node["properties"] is JsonObject properties)
            {
                found.Add(path);
                foreach (var (name, child) in properties)
                    Walk(child!.AsObject(), path.Length == 0 ? name : path + "." + name, found);
            }
            if (node["items"] is JsonObject items && Resolve(items)["properties"] != null)
                Walk(items, path + "[]", found);
        }
    }

    /// <summary>YAML to JSON the way the core schema reads it: plain scalars may be numbers, booleans or null; quoted ones are strings.</summary>
    static JsonNode? YamlToJson(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return Convert(stream.Documents[0].RootNode);

        static JsonNode? Convert(YamlNode node) => node switch
        {
            YamlMappingNode map => new JsonObject(map.Children.Select(p => KeyValuePair.Create(((YamlScalarNode)p.Key).Value!, Convert(p.Value)))),
            YamlSequenceNode list => new JsonArray(list.Children.Select(Convert).ToArray()),
            YamlScalarNode scalar when scalar.Style != ScalarStyle.Plain => JsonValue.Create(scalar.Value),
            YamlScalarNode scalar => Plain(scalar.Value ?? ""),
            _ => throw new NotSupportedException(node.GetType().Name),
        };

        static JsonNode? Plain(string value)
        {
            if (value is "" or "~" or "null") return null;
            if (value is "true" or "false") return JsonValue.Create(value == "true");
            if (long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long integer)) return JsonValue.Create(integer);
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double number)) return JsonValue.Create(number);
            return JsonValue.Create(value);
        }
    }
}
