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

        public int Start { get; }
        public int End { get; }
        public int Line { get; }
        public int Column { get; }
        public int EndLine { get; }
        public int EndColumn { get; }

        public static readonly SpecSpan FileStart = new SpecSpan(0, 0, 1, 1, 1, 1);
    }

    /// <summary>One problem in a spec: its kind, the key path it concerns, where it is, and the message arguments.</summary>
#if DDPM_GENERATOR
    internal sealed class SpecError
#else
    public sealed class SpecError
#endif
    {
        public SpecError(SpecErrorKind kind, string path, SpecSpan span, params string[] arguments)
        {
            Kind = kind;
            Path = path;
            Span = span;
            Arguments = arguments;
        }

        public SpecErrorKind Kind { get; }
        /// <summary>The key path ("model.channels", "training.optimizer.lr"); "" for the whole file.</summary>
        public string Path { get; }
        public SpecSpan Span { get; }
        public IReadOnlyList<string> Arguments { get; }
        public string Id => SpecMessages.Id(Kind);
        public string Message => string.Format(CultureInfo.InvariantCulture, SpecMessages.Format(Kind), Arguments.Cast<object>().ToArray());

        public override string ToString() => $"{Span.Line}:{Span.Column}: {Id}: {Message}";
    }

    /// <summary>The type of a key's value, as the reader checks it and the JSON Schema states it.</summary>
#if DDPM_GENERATOR
    internal enum SpecValueType { Mapping, List, Integer, Number, Boolean, String, Enum }
#else
    public enum SpecValueType { Mapping, List, Integer, Number, Boolean, String, Enum }
#endif

    /// <summary>One key of the format.</summary>
#if DDPM_GENERATOR
    internal sealed class SpecKey
#else
    public sealed class SpecKey
#endif
    {
        public SpecKey(string name, SpecValueType type, string description, bool required = false, params string[] values)
        {
            Name = name;
            Type = type;
            Description = description;
            Required = required;
            Values = values;
        }

        public string Name { get; }
        public SpecValueType Type { get; }
        public string Description { get; }
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
        public string Name { get; set; } = "";
        public string Namespace { get; set; } = "";
        public int Channels { get; set; } = SpecDefaults.Channels;
        public int ImageSize { get; set; } = SpecDefaults.ImageSize;
        public int Dim { get; set; } = SpecDefaults.Dim;
        public int[] DimMults { get; set; } = SpecDefaults.DimMults.ToArray();
        public int ResnetBlockGroups { get; set; } = SpecDefaults.ResnetBlockGroups;
        /// <summary>Entry i is stage i; stages past the list take the defaults.</summary>
        public List<StageSection> Stages { get; } = new List<StageSection>();
        public AttentionKind MidAttention { get; set; } = SpecDefaults.MidAttention;
        public int Heads { get; set; } = SpecDefaults.Heads;
        public int DimHead { get; set; } = SpecDefaults.DimHead;
    }

    /// <summary>One entry of `model.stages`.</summary>
#if DDPM_GENERATOR
    internal sealed class StageSection
#else
    public sealed class StageSection
#endif
    {
        public int Blocks { get; set; } = SpecDefaults.StageBlocks;
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
        public ScheduleKind Kind { get; set; } = ScheduleKind.Linear;
        public int Timesteps { get; set; } = SpecDefaults.Timesteps;
        public double BetaStart { get; set; } = SpecDefaults.BetaStart;
        public double BetaEnd { get; set; } = SpecDefaults.BetaEnd;
        public Objective Objective { get; set; } = SpecDefaults.Objective;
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
        public ModelSection? Model { get; internal set; }
        public ScheduleSection? Schedule { get; internal set; }
        public TrainingSpec Training { get; internal set; } = new TrainingSpec();
        public bool HasTraining { get; internal set; }
        public List<SpecError> Errors { get; } = new List<SpecError>();
        /// <summary>Where each value is, by key path: "model", "model.channels", "model.stages[1].attention", ...</summary>
        public Dictionary<string, SpecSpan> Values { get; } = new Dictionary<string, SpecSpan>(StringComparer.Ordinal);
        /// <summary>Where each key is written, by key path.</summary>
        public Dictionary<string, SpecSpan> Keys { get; } = new Dictionary<string, SpecSpan>(StringComparer.Ordinal);

        /// <summary>Hash of the model and schedule sections (see SpecYaml.ArchitectureHash).</summary>
        public string ArchitectureHash => SpecYaml.ArchitectureHash(Model, Schedule);
    }
}
