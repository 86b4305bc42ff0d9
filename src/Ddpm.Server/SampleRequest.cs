using Microsoft.AspNetCore.Http;
using System.Globalization;
using System.Text.Json;
using Ddpm.Specs;
using Ddpm.Training;

namespace Ddpm.Server;

/// <summary>
/// A sampling request as JSON: every field optional. The fields and their rules are <c>ddpm sample</c>'s options
/// (the same defaults, ranges and class words); a bad one is one 400 naming it.
/// </summary>
/// <param name="Checkpoint">A run's checkpoint: last (default) or best.</param>
/// <param name="Model">For /api/onnx/sample: the .onnx file's path inside the runs folder, e.g. fashion/model.onnx.</param>
/// <param name="Weights">auto (default: what the run's evaluation preferred), ema or raw.</param>
/// <param name="Sampler">dpmpp-2m-sde (default), ddpm, dpmpp-2m or ddim.</param>
/// <param name="Steps">Model calls of the samplers that take a number of them (default 20, at most the schedule's timesteps).</param>
/// <param name="Eta">DDIM's eta, 0 to 1.</param>
/// <param name="Seed">The seed of the noise; the same seed draws the same images.</param>
/// <param name="Count">Images to draw (default 64, at most the server's limit, `ddpm sample`'s).</param>
/// <param name="Class">For a class-conditional model: a class name or index, all (one row per class) or none.</param>
/// <param name="Guidance">For a class-conditional model: the guidance scale, 0 to 100 (default the model's).</param>
/// <param name="Format">png (a grid, default) or npy (float32 [count, C, H, W] in [-1, 1]).</param>
/// <param name="Async">true: answer 202 with a job to poll (GET /api/jobs/{id}) instead of the image.</param>
public sealed record SampleRequestBody(string? Checkpoint, string? Model, string? Weights, string? Sampler, int? Steps, double? Eta, long? Seed,
                                       int? Count, string? Class, double? Guidance, string? Format, bool? Async);

/// <summary>A sampling request read and checked field by field.</summary>
internal sealed class SampleRequest
{
    public string Checkpoint { get; private init; } = "last";
    public string? Model { get; private init; }
    public SamplingWeights Weights { get; private init; } = SamplingWeights.Unknown;
    public SamplerKind Sampler { get; private init; } = SpecDefaults.Sampler;
    public int? Steps { get; private init; }
    public double Eta { get; private init; }
    public long Seed { get; private init; }
    public int Count { get; private init; } = DefaultCount;
    public string? Class { get; private init; }
    public double? Guidance { get; private init; }
    public bool Npy { get; private init; }
    public bool Async { get; private init; }

    /// <summary>Images when the request does not say (as `ddpm sample --count`).</summary>
    public const int DefaultCount = 64;

    /// <summary>DDIM's eta: 0 deterministic to 1, DDPM-like noise (`ddpm sample --eta`).</summary>
    public static readonly NumberRange EtaRange = NumberRange.Between(0, 1);

    private static readonly string[] Fields = ["checkpoint", "model", "weights", "sampler", "steps", "eta", "seed", "count", "class", "guidance", "format", "async"];

    /// <summary>Reads the body; <paramref name="onnx"/>: the request names an .onnx model (model required; checkpoint and weights refused).</summary>
    public static async Task<SampleRequest> Read(HttpRequest http, int maxCount, bool onnx)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(http.Body, cancellationToken: http.HttpContext.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiError.BadField("body", $"the body is not JSON: {e.Message.Split('\n')[0]}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw ApiError.BadField("body", "the body must be a JSON object of sampling fields.");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (Array.IndexOf(Fields, property.Name) < 0)
                    throw ApiError.BadField(property.Name, $"unknown field '{RunsFolder.Echo(property.Name)}'; the fields are {string.Join(", ", Fields)}.");
                if (!seen.Add(property.Name)) throw ApiError.BadField(property.Name, $"{property.Name} is given twice.");
            }
            JsonElement? Get(string name) => root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;
            string? Text(string name) => Get(name) is { } v
                ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiError.BadField(name, $"{name} must be a string, got {Kind(v)}.")
                : null;
            string? OneOf(string name, params string[] allowed) => Text(name) is { } value
                ? allowed.Contains(value.ToLowerInvariant()) ? value.ToLowerInvariant()
                    : throw ApiError.BadField(name, $"{name} must be {string.Join(", ", allowed)}, got '{RunsFolder.Echo(value)}'.")
                : null;
            int? Int(string name, int minimum, int maximum)
            {
                if (Get(name) is not { } v) return null;
                if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int value))
                    throw ApiError.BadField(name, $"{name} must be a whole number from {minimum} to {maximum}, got {Echo(v)}.");
                if (value < minimum || value > maximum) throw ApiError.BadField(name, $"{name} must be from {minimum} to {maximum}, got {value}.");
                return value;
            }
            double? Number(string name, NumberRange range)
            {
                if (Get(name) is not { } v) return null;
                if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double value) || !double.IsFinite(value))
                    throw ApiError.BadField(name, $"{name} must be a finite number {range.Text}, got {Echo(v)}.");
                if (!range.Allows(value)) throw ApiError.BadField(name, $"{name} must be {range.Text}, got {value.ToString(CultureInfo.InvariantCulture)}.");
                return value;
            }

            if (onnx)
            {
                foreach (string runOnly in new[] { "checkpoint", "weights" })
                    if (Get(runOnly) is not null)
                        throw ApiError.BadField(runOnly, $"{runOnly} applies to a run's checkpoints, not to an .onnx model (it holds one set of weights).");
            }
            else if (Get("model") is not null)
                throw ApiError.BadField("model", "model names an .onnx file for /api/onnx/sample; a run's sampling takes checkpoint (last or best).");
            string? model = onnx ? Text("model") ?? throw ApiError.BadField("model", "model is required: the .onnx file's path inside the runs folder, e.g. 'fashion/model.onnx'.") : null;
            long seed = 0;
            if (Get("seed") is { } s)
                if (s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out seed))
                    throw ApiError.BadField("seed", $"seed must be a whole number from {long.MinValue} to {long.MaxValue}, got {Echo(s)}.");
            string? classWords = Get("class") is { } c
                ? c.ValueKind switch
                {
                    JsonValueKind.String => c.GetString(),
                    JsonValueKind.Number when c.TryGetInt32(out int index) => index.ToString(CultureInfo.InvariantCulture),
                    _ => throw ApiError.BadField("class", $"class must be a class name or index, 'all' or 'none', got {Echo(c)}."),
                }
                : null;
            if (classWords is not null && string.IsNullOrWhiteSpace(classWords)) throw ApiError.BadField("class", "class is empty; give a class name or index, 'all' or 'none'.");
            bool async = false;
            if (Get("async") is { } a)
                async = a.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw ApiError.BadField("async", $"async must be true or false, got {Echo(a)}."),
                };
            string? sampler = OneOf("sampler", SpecYaml.SamplerValues);
            return new SampleRequest
            {
                Checkpoint = OneOf("checkpoint", "last", "best") ?? "last",
                Model = model,
                Weights = OneOf("weights", "auto", "ema", "raw") switch { "ema" => SamplingWeights.Ema, "raw" => SamplingWeights.Raw, _ => SamplingWeights.Unknown },
                Sampler = sampler is null ? SpecDefaults.Sampler : (SamplerKind)Array.IndexOf(SpecYaml.SamplerValues, sampler),
                Steps = Int("steps", 1, int.MaxValue),
                Eta = Number("eta", EtaRange) ?? 0,
                Seed = seed,
                Count = Int("count", 1, maxCount) ?? DefaultCount,
                Class = classWords,
                Guidance = Number("guidance", ClassRules.Guidance),
                Npy = OneOf("format", "png", "npy") == "npy",
                Async = async,
            };
        }
    }

    /// <summary>The model calls to run for a schedule of <paramref name="timesteps"/>: one 400 when too many.</summary>
    public int StepsFor(int timesteps)
    {
        int steps = Steps ?? SpecDefaults.SamplerStepsFor(timesteps);
        if (Sampler != SamplerKind.Ddpm && steps > timesteps)
            throw ApiError.BadField("steps", $"steps {steps} exceeds the schedule's {timesteps} timesteps.");
        return steps;
    }

    /// <summary>
    /// The rule of class and guidance (as `ddpm sample --class/--guidance`): <paramref name="classNames"/> is null for an
    /// unconditional model, which takes neither; a conditional one needs a class. <paramref name="choose"/> reads the words.
    /// </summary>
    public T? ResolveClass<T>(string name, IReadOnlyList<string>? classNames, Func<string, T> choose) where T : class
    {
        if (classNames is null)
        {
            if (Class is not null || Guidance is not null)
                throw ApiError.BadField(Class is not null ? "class" : "guidance", $"{name} is not class-conditional: class and guidance do not apply to it.");
            return null;
        }
        if (Class is null)
            throw ApiError.BadField("class", $"{name} is class-conditional: give class, a class name or index ({string.Join(", ", classNames.Select((n, i) => $"{i} {n}"))}), " +
                                             "'all' for every class, or 'none' for the unconditional model.");
        try
        {
            return choose(Class);
        }
        catch (ArgumentException e)
        {
            throw ApiError.BadField(e.Message.Contains("guidance", StringComparison.OrdinalIgnoreCase) && Guidance is not null ? "guidance" : "class",
                                    $"class {RunsFolder.Echo(Class)}: {ApiError.Describe(e)}");
        }
    }

    private static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "a string",
    };

    private static string Echo(JsonElement v) => RunsFolder.Echo(v.GetRawText());
}
