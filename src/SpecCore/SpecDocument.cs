// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). The values
// SpecYaml reads from a YAML spec, the errors it finds, and the key descriptions of the format.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>What is wrong with a spec; each kind is one DDPM1xx diagnostic of the generator.</summary>
#if DDPM_GENERATOR
    internal enum SpecErrorKind
#else
    public enum SpecErrorKind
#endif
    {
        /// <summary>DDPM101: the text is not YAML (or holds more than one document).</summary>
        Malformed,
        /// <summary>DDPM102: a key the format does not have.</summary>
        UnknownKey,
        /// <summary>DDPM103: a value of the wrong type (a string where a number belongs, a list where a mapping belongs).</summary>
        WrongType,
        /// <summary>DDPM104: a required key is missing.</summary>
        MissingKey,
        /// <summary>DDPM105: a value outside an enumeration (attention, schedule kind, objective, loss, optimizer, precision, EMA warm-up, sampler).</summary>
        UnknownValue,
        /// <summary>DDPM106: a training setting out of its range.</summary>
        OutOfRange,
        /// <summary>DDPM107: a type or namespace name that is not a C# name.</summary>
        InvalidName,
    }

    /// <summary>The message formats of the spec errors: shared by the generator's descriptors and the runtime.</summary>
#if DDPM_GENERATOR
    internal static class SpecMessages
#else
    public static class SpecMessages
#endif
    {
        /// <summary>{0}: the YAML parser's message.</summary>
        public const string Malformed = "Invalid YAML: {0}";
        /// <summary>{0}: key, {1}: section, {2}: " (did you mean 'x'?)" or "", {3}: allowed keys.</summary>
        public const string UnknownKey = "Unknown key '{0}' in {1}{2}; allowed keys: {3}";
        /// <summary>{0}: key path, {1}: expected type, {2}: what was written.</summary>
        public const string WrongType = "'{0}' must be {1}, got {2}";
        /// <summary>{0}: section, {1}: key, {2}: what the key means.</summary>
        public const string MissingKey = "{0} is missing the required key '{1}' ({2})";
        /// <summary>{0}: key path, {1}: value, {2}: " (did you mean 'x'?)" or "", {3}: allowed values.</summary>
        public const string UnknownValue = "'{0}' has unknown value '{1}'{2}; use {3}";
        /// <summary>{0}: key path, {1}: the allowed range, {2}: value.</summary>
        public const string OutOfRange = "'{0}' must be {1}, got {2}";
        /// <summary>{0}: key path, {1}: what a valid name is, {2}: value.</summary>
        public const string InvalidName = "'{0}' must be {1}, got '{2}'";

        /// <summary>The message format of <paramref name="kind"/>, one of the constants above (composite format, invariant culture).</summary>
        public static string Format(SpecErrorKind kind) => kind switch
        {
            SpecErrorKind.Malformed => Malformed,
            SpecErrorKind.UnknownKey => UnknownKey,
            SpecErrorKind.WrongType => WrongType,
            SpecErrorKind.MissingKey => MissingKey,
            SpecErrorKind.UnknownValue => UnknownValue,
            SpecErrorKind.OutOfRange => OutOfRange,
            _ => InvalidName,
        };

        /// <summary>The generator's diagnostic ID of each kind.</summary>
        public static string Id(SpecErrorKind kind) => "DDPM" + (101 + (int)kind).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Where a node is: 0-based character offsets (end exclusive) and 1-based lines and columns.</summary>
#if DDPM_GENERATOR
    internal sealed class SpecSpan
#else
    public sealed class SpecSpan
#endif
    {
        /// <summary>Creates a span; an end before the start collapses to the start.</summary>
        /// <param name="start">0-based character offset of the first character.</param>
        /// <param name="end">0-based character offset just past the last character.</param>
        /// <param name="line">1-based line of <paramref name="start"/>.</param>
        /// <param name="column">1-based column of <paramref name="start"/>.</param>
        /// <param name="endLine">1-based line of <paramref name="end"/>.</param>
        /// <param name="endColumn">1-based column of <paramref name="end"/>.</param>
        public SpecSpan(int start, int end, int line, int column, int endLine, int endColumn)
        {
            Start = start;
            End = Math.Max(start, end);
            Line = line;
            Column = column;
            // A node that YamlDotNet ends before it starts (rare, complex keys) collapses to its start.
            bool endsBefore = end < start || endLine < line || (endLine == line && endColumn < column);
            EndLine = endsBefore ? line : endLine;
            EndColumn = endsBefore ? column : endColumn;
        }

        /// <summary>0-based character offset of the first character.</summary>
        public int Start { get; }
        /// <summary>0-based character offset just past the last character (never before <see cref="Start"/>).</summary>
        public int End { get; }
        /// <summary>1-based line of <see cref="Start"/>.</summary>
        public int Line { get; }
        /// <summary>1-based column of <see cref="Start"/>.</summary>
        public int Column { get; }
        /// <summary>1-based line of <see cref="End"/>.</summary>
        public int EndLine { get; }
        /// <summary>1-based column of <see cref="End"/> (exclusive).</summary>
        public int EndColumn { get; }

        /// <summary>The empty span at line 1, column 1: for errors about the whole file.</summary>
        public static readonly SpecSpan FileStart = new SpecSpan(0, 0, 1, 1, 1, 1);
    }

    /// <summary>One problem in a spec: its kind, the key path it concerns, where it is, and the message arguments.</summary>
#if DDPM_GENERATOR
    internal sealed class SpecError
#else
    public sealed class SpecError
#endif
    {
        /// <summary>Creates an error; the message is built from <paramref name="kind"/>'s format and <paramref name="arguments"/>.</summary>
        /// <param name="kind">What is wrong.</param>
        /// <param name="path">The key path the error concerns; "" for the whole file.</param>
        /// <param name="span">Where in the text to point.</param>
        /// <param name="arguments">The arguments of <see cref="SpecMessages.Format"/>(<paramref name="kind"/>), in order.</param>
        public SpecError(SpecErrorKind kind, string path, SpecSpan span, params string[] arguments)
        {
            Kind = kind;
            Path = path;
            Span = span;
            Arguments = arguments;
        }

        /// <summary>What is wrong; also decides <see cref="Id"/> and the message format.</summary>
        public SpecErrorKind Kind { get; }
        /// <summary>The key path ("model.channels", "training.optimizer.lr"); "" for the whole file.</summary>
        public string Path { get; }
        /// <summary>Where the offending key or value is written.</summary>
        public SpecSpan Span { get; }
        /// <summary>The arguments filled into the message format, as documented on each <see cref="SpecMessages"/> constant.</summary>
        public IReadOnlyList<string> Arguments { get; }
        /// <summary>The generator's diagnostic ID, "DDPM101" to "DDPM107".</summary>
        public string Id => SpecMessages.Id(Kind);
        /// <summary>The message, formatted in the invariant culture.</summary>
        public string Message => string.Format(CultureInfo.InvariantCulture, SpecMessages.Format(Kind), Arguments.Cast<object>().ToArray());

        /// <summary>"line:column: ID: message", the way a compiler reports a diagnostic.</summary>
        public override string ToString() => $"{Span.Line}:{Span.Column}: {Id}: {Message}";
    }

    /// <summary>The type of a key's value, as the reader checks it and the JSON Schema states it.</summary>
#if DDPM_GENERATOR
    internal enum SpecValueType
#else
    public enum SpecValueType
#endif
    {
        /// <summary>A YAML mapping of further keys (a section).</summary>
        Mapping,
        /// <summary>A YAML list.</summary>
        List,
        /// <summary>A whole number.</summary>
        Integer,
        /// <summary>A finite number (integer or decimal).</summary>
        Number,
        /// <summary>true or false.</summary>
        Boolean,
        /// <summary>Free text.</summary>
        String,
        /// <summary>One of a fixed set of words (<see cref="SpecKey.Values"/>).</summary>
        Enum,
    }

    /// <summary>One key of the format.</summary>
#if DDPM_GENERATOR
    internal sealed class SpecKey
#else
    public sealed class SpecKey
#endif
    {
        /// <summary>Describes one key of a section.</summary>
        /// <param name="name">The key as written in YAML (snake_case).</param>
        /// <param name="type">The type its value must have.</param>
        /// <param name="description">What the key means, as error messages and the JSON Schema word it.</param>
        /// <param name="required">Whether the section must have the key.</param>
        /// <param name="values">The allowed spellings of an <see cref="SpecValueType.Enum"/> key; empty otherwise.</param>
        public SpecKey(string name, SpecValueType type, string description, bool required = false, params string[] values)
        {
            Name = name;
            Type = type;
            Description = description;
            Required = required;
            Values = values;
        }

        /// <summary>The key as written in YAML, e.g. "image_size".</summary>
        public string Name { get; }
        /// <summary>The type its value must have.</summary>
        public SpecValueType Type { get; }
        /// <summary>What the key means, in a few words (used in messages and in the JSON Schema).</summary>
        public string Description { get; }
        /// <summary>Whether the section must have the key (a missing one is <see cref="SpecErrorKind.MissingKey"/>).</summary>
        public bool Required { get; }
        /// <summary>The allowed values of an Enum key.</summary>
        public IReadOnlyList<string> Values { get; }
    }

    /// <summary>The `model:` section as written, defaults filled in (SpecDefaults, the same as the attributes').</summary>
#if DDPM_GENERATOR
    internal sealed class ModelSection
#else
    public sealed class ModelSection
#endif
    {
        /// <summary>The generated class name (`model.name`), a C# identifier; required in a spec.</summary>
        public string Name { get; set; } = "";
        /// <summary>The namespace of the generated classes (`model.namespace`); "" when not given.</summary>
        public string Namespace { get; set; } = "";
        /// <summary>Image channels (`model.channels`): 1 for grayscale, 3 for RGB.</summary>
        public int Channels { get; set; } = SpecDefaults.Channels;
        /// <summary>Height and width of the square images in pixels (`model.image_size`).</summary>
        public int ImageSize { get; set; } = SpecDefaults.ImageSize;
        /// <summary>Base channel count of the U-Net (`model.dim`): the width of the first stage; stage i widens to Dim * DimMults[i] at its end.</summary>
        public int Dim { get; set; } = SpecDefaults.Dim;
        /// <summary>Channel multiplier per stage (`model.dim_mults`); one stage per entry, a downsampling between stages.</summary>
        public int[] DimMults { get; set; } = SpecDefaults.DimMults.ToArray();
        /// <summary>GroupNorm groups of every ResNet block (`model.resnet_block_groups`).</summary>
        public int ResnetBlockGroups { get; set; } = SpecDefaults.ResnetBlockGroups;
        /// <summary>Entry i is stage i; stages past the list take the defaults.</summary>
        public List<StageSection> Stages { get; } = new List<StageSection>();
        /// <summary>The attention layer between the two middle ResNet blocks (`model.mid.attention`).</summary>
        public AttentionKind MidAttention { get; set; } = SpecDefaults.MidAttention;
        /// <summary>Heads of every attention layer (`model.attention.heads`).</summary>
        public int Heads { get; set; } = SpecDefaults.Heads;
        /// <summary>Channels per attention head (`model.attention.dim_head`).</summary>
        public int DimHead { get; set; } = SpecDefaults.DimHead;
        /// <summary>Classes of a class-conditional model (`model.classes`); 0 = unconditional. Read as written: the generator checks its range.</summary>
        public int Classes { get; set; } = SpecDefaults.Classes;
        /// <summary>Share of training labels dropped to the null class (`model.class_dropout`); null when not written.</summary>
        public double? ClassDropout { get; set; }
        /// <summary>The default guidance scale of sampling (`model.guidance`); null when not written.</summary>
        public double? Guidance { get; set; }
    }

    /// <summary>One entry of `model.stages`.</summary>
#if DDPM_GENERATOR
    internal sealed class StageSection
#else
    public sealed class StageSection
#endif
    {
        /// <summary>ResNet blocks in the stage (`blocks`).</summary>
        public int Blocks { get; set; } = SpecDefaults.StageBlocks;
        /// <summary>The stage's attention layer (`attention`); the mirrored up stage has the same.</summary>
        public AttentionKind Attention { get; set; } = SpecDefaults.StageAttention;
    }

    /// <summary>The `schedule:` section as written, defaults filled in.</summary>
#if DDPM_GENERATOR
    internal sealed class ScheduleSection
#else
    public sealed class ScheduleSection
#endif
    {
        /// <summary>The class name; "" when not given (the generator derives it from the model's name).</summary>
        public string Name { get; set; } = "";
        /// <summary>How the betas grow (`schedule.kind`); required in a spec.</summary>
        public ScheduleKind Kind { get; set; } = ScheduleKind.Linear;
        /// <summary>The number of diffusion steps T (`schedule.timesteps`).</summary>
        public int Timesteps { get; set; } = SpecDefaults.Timesteps;
        /// <summary>beta at t = 0 (`schedule.beta_start`); not used by the cosine schedule.</summary>
        public double BetaStart { get; set; } = SpecDefaults.BetaStart;
        /// <summary>beta at t = T - 1 (`schedule.beta_end`); not used by the cosine schedule.</summary>
        public double BetaEnd { get; set; } = SpecDefaults.BetaEnd;
        /// <summary>What the model predicts (`schedule.objective`): eps, x_0 or v.</summary>
        public Objective Objective { get; set; } = SpecDefaults.Objective;
        /// <summary>Clip the predicted x_0 to [-1, 1] at every sampling step (`schedule.clip_x0`).</summary>
        public bool ClipX0 { get; set; } = SpecDefaults.ClipX0;
        /// <summary>The quantile of dynamic thresholding; 0 = off. Read as any finite number: the generator checks its range.</summary>
        public double DynamicThreshold { get; set; } = SpecDefaults.DynamicThreshold;
    }

    /// <summary>A read spec: its sections, where every key and value is, and every error found.</summary>
#if DDPM_GENERATOR
    internal sealed class SpecDocument
#else
    public sealed class SpecDocument
#endif
    {
        /// <summary>False for YAML that is not a Ddpm spec (no `model` or `schedule` at the root): ignore it.</summary>
        public bool IsSpec { get; internal set; }
        /// <summary>The `model:` section; null when the spec has none (a schedule-only spec).</summary>
        public ModelSection? Model { get; internal set; }
        /// <summary>The `schedule:` section; null when the spec has none.</summary>
        public ScheduleSection? Schedule { get; internal set; }
        /// <summary>The `training:` section, defaults filled in; the defaults alone when <see cref="HasTraining"/> is false.</summary>
        public TrainingSpec Training { get; internal set; } = new TrainingSpec();
        /// <summary>Whether the spec has a `training:` section.</summary>
        public bool HasTraining { get; internal set; }
        /// <summary>Every problem found, in reading order; the values of a key in error are its defaults.</summary>
        public List<SpecError> Errors { get; } = new List<SpecError>();
        /// <summary>Where each value is, by key path: "model", "model.channels", "model.stages[1].attention", ...</summary>
        public Dictionary<string, SpecSpan> Values { get; } = new Dictionary<string, SpecSpan>(StringComparer.Ordinal);
        /// <summary>Where each key is written, by key path.</summary>
        public Dictionary<string, SpecSpan> Keys { get; } = new Dictionary<string, SpecSpan>(StringComparer.Ordinal);

        /// <summary>Hash of the model and schedule sections (see SpecYaml.ArchitectureHash).</summary>
        public string ArchitectureHash => SpecYaml.ArchitectureHash(Model, Schedule);
    }
}
