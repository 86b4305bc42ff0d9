// Used by the exporter (Ddpm.Runtime) and the reader (Ddpm.Onnx): one list of keys and one number format, so what
// `ddpm export --format onnx` writes is what Ddpm.Onnx reads. Internal to Ddpm.Core and the assemblies it names.
using System.Globalization;

namespace Ddpm.Onnx;

/// <summary>
/// The keys of an exported model's <c>metadata_props</c>: everything a sampler needs besides the graph (the schedule's
/// tables, the objective, the image shape) and where the model came from. Numbers are invariant-culture, doubles round-trip.
/// </summary>
internal static class OnnxMetadata
{
    /// <summary>The format of the metadata below; a reader refuses files of another.</summary>
    public const string FormatKey = "ddpm.format";
    public const string FormatValue = "ddpm-onnx-1";

    public const string ModelKey = "ddpm.model";
    public const string SpecFileKey = "ddpm.spec";
    public const string ArchitectureHashKey = "ddpm.architecture_hash";
    public const string ChannelsKey = "ddpm.channels";
    public const string ImageSizeKey = "ddpm.image_size";

    public const string ScheduleKindKey = "ddpm.schedule.kind";
    public const string TimestepsKey = "ddpm.schedule.timesteps";
    public const string FingerprintKey = "ddpm.schedule.fingerprint";
    /// <summary>beta_t for t = 0..T-1, comma-separated.</summary>
    public const string BetasKey = "ddpm.schedule.betas";
    /// <summary>alpha_bar_t for t = 0..T-1, comma-separated (as the training program computed them, float64).</summary>
    public const string AlphasCumprodKey = "ddpm.schedule.alphas_cumprod";

    /// <summary>What the network predicts: eps, x0 or v.</summary>
    public const string ObjectiveKey = "ddpm.objective";
    public const string ClipX0Key = "ddpm.clip_x0";
    public const string DynamicThresholdKey = "ddpm.dynamic_threshold";

    /// <summary>A class-conditional model's classes (absent for an unconditional one); its graph has the <c>labels</c> input.</summary>
    public const string ClassesKey = "ddpm.classes";
    /// <summary>The class names, entry i naming label i, as a JSON array of strings.</summary>
    public const string ClassNamesKey = "ddpm.class_names";
    /// <summary>The share of training labels dropped to the null class (guidance other than 1 needs it above 0).</summary>
    public const string ClassDropoutKey = "ddpm.class_dropout";
    /// <summary>The declared guidance scale, what sampling uses unless told otherwise.</summary>
    public const string GuidanceKey = "ddpm.guidance";

    public const string WeightsKey = "ddpm.weights";
    public const string StepKey = "ddpm.step";
    /// <summary>The checkpoint's resolved run settings (YAML), as <c>ddpm export</c> writes them beside other formats.</summary>
    public const string ConfigKey = "ddpm.config";

    /// <summary>The graph's input and output names.</summary>
    public const string ImagesInput = "images";
    public const string TimestepsInput = "timesteps";
    /// <summary>A conditional model's third input: int64 [batch], the class of each image, 0 .. classes (classes = the null class).</summary>
    public const string LabelsInput = "labels";
    public const string PredictionOutput = "prediction";

    // The allowed values of the numbers above, so crafted metadata is refused at load with the key and the range rather
    // than trusted: the spec rules' ranges (ScheduleRules, ClassRules), and the one image limit (4096 x 4096 pixels).
    /// <summary><see cref="ChannelsKey"/>: 1 (grey) to 3 (RGB), what a grid is written in.</summary>
    public static readonly Ddpm.Specs.NumberRange ChannelsRange = Ddpm.Specs.NumberRange.Between(1, 3);
    /// <summary><see cref="ImageSizeKey"/>: 1 to 4096, the side of the largest image ddpm decodes (4096 x 4096 pixels).</summary>
    public static readonly Ddpm.Specs.NumberRange ImageSizeRange = Ddpm.Specs.NumberRange.Between(1, 4096);
    /// <summary><see cref="TimestepsKey"/>: as the spec's schedule.timesteps, &gt;= 1.</summary>
    public static readonly Ddpm.Specs.NumberRange TimestepsRange = Ddpm.Specs.NumberRange.AtLeast(1);
    /// <summary><see cref="DynamicThresholdKey"/>: as the spec's schedule.dynamic_threshold, in [0, 1) (0 = off).</summary>
    public static readonly Ddpm.Specs.NumberRange DynamicThresholdRange = Ddpm.Specs.NumberRange.UnitOpenAbove;

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    public static string Format(IEnumerable<double> values) => string.Join(",", values.Select(Format));

    /// <summary>Parses a comma-separated list written by <see cref="Format(IEnumerable{double})"/>.</summary>
    /// <exception cref="FormatException">An entry is not a number; the message names <paramref name="key"/>.</exception>
    public static double[] ParseDoubles(string text, string key)
    {
        string[] parts = text.Split(',');
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                throw new FormatException($"metadata '{key}': entry {i} ('{parts[i]}') is not a number.");
        return values;
    }
}
