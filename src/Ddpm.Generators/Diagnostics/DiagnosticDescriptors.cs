using Microsoft.CodeAnalysis;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators.Diagnostics
{
    /// <summary>
    /// Every diagnostic the generator reports. DDPM0xx: declarations (attributes or YAML, shared
    /// validation); DDPM1xx: YAML syntax and schema; DDPM3xx: sampling settings of a schedule (shared
    /// validation). Keep AnalyzerReleases.Unshipped.md in sync.
    /// </summary>
    internal static class DiagnosticDescriptors
    {
        private const string Category = "Ddpm";

        private static DiagnosticDescriptor Error(string id, string title, string message) =>
            new DiagnosticDescriptor(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        /// <summary>{0}: type name.</summary>
        public static readonly DiagnosticDescriptor NotPartial = Error("DDPM001",
            "Declared type must be partial",
            "'{0}' must be declared partial so Ddpm can generate its members; add the 'partial' modifier");

        /// <summary>{0}: type name.</summary>
        public static readonly DiagnosticDescriptor NotTopLevel = Error("DDPM002",
            "Declared type must be a top-level, non-generic class",
            "'{0}' must be a top-level, non-generic class; move it out of its containing type and remove its type parameters");

        /// <summary>{0}: index, {1}: number of stages, {2}: largest valid index, {3}: the multipliers' setting name.</summary>
        public static readonly DiagnosticDescriptor StageIndexOutOfRange = Error("DDPM003",
            "Stage index out of range",
            "Stage index {0} is out of range: the model has {1} stages (one per {3} entry), so use 0 to {2}");

        /// <summary>{0}: index.</summary>
        public static readonly DiagnosticDescriptor StageIndexRepeated = Error("DDPM004",
            "Stage declared twice",
            "Stage {0} is declared more than once; keep one declaration per stage");

        /// <summary>{0}: setting name, {1}: value.</summary>
        public static readonly DiagnosticDescriptor AttentionHeadsOutOfRange = Error("DDPM005",
            "Attention heads must be at least 1",
            "{0} must be >= 1, got {1}");

        /// <summary>{0}: setting name, {1}: value.</summary>
        public static readonly DiagnosticDescriptor AttentionHeadSizeOutOfRange = Error("DDPM006",
            "Attention head size must be at least 1",
            "{0} must be >= 1, got {1}");

        /// <summary>{0}: where, {1}: channels, {2}: groups setting name, {3}: groups, {4}: all channel counts.</summary>
        public static readonly DiagnosticDescriptor ChannelsNotDivisibleByGroups = Error("DDPM007",
            "Channels not divisible by the GroupNorm groups",
            "{0} has {1} channels, which {2} = {3} does not divide; GroupNorm needs every channel count ({4}) divisible by the groups");

        /// <summary>{0}: setting name, {1}: size, {2}: divisor, {3}: downsamplings, {4}: a valid size.</summary>
        public static readonly DiagnosticDescriptor ImageSizeNotDivisible = Error("DDPM008",
            "Image size not divisible by the downsampling factor",
            "{0} = {1} must be divisible by {2} (the model halves it {3} times between stages); use for example {4}");

        /// <summary>{0}: setting name, {1}: value.</summary>
        public static readonly DiagnosticDescriptor TimestepsOutOfRange = Error("DDPM009",
            "Timesteps must be at least 1",
            "{0} must be >= 1, got {1}");

        /// <summary>{0}: setting name, {1}: value.</summary>
        public static readonly DiagnosticDescriptor BetaOutOfRange = Error("DDPM010",
            "Beta outside (0, 1)",
            "{0} must be in the open interval (0, 1), got {1}");

        /// <summary>{0}: start name, {1}: start, {2}: end name, {3}: end.</summary>
        public static readonly DiagnosticDescriptor BetaStartAfterEnd = Error("DDPM011",
            "Beta start exceeds beta end",
            "{0} ({1}) must not exceed {2} ({3}); the variances of the forward process grow with t");

        /// <summary>{0}: the kind as written.</summary>
        public static readonly DiagnosticDescriptor UnknownScheduleKind = Error("DDPM012",
            "Unknown schedule kind",
            "Unknown schedule kind '{0}'; use Linear, Cosine, Quadratic or Sigmoid");

        /// <summary>{0}: setting name, {1}: value.</summary>
        public static readonly DiagnosticDescriptor SizeOutOfRange = Error("DDPM013",
            "Size must be at least 1",
            "{0} must be >= 1, got {1}");

        /// <summary>{0}: setting name.</summary>
        public static readonly DiagnosticDescriptor NoStages = Error("DDPM014",
            "No stages",
            "{0} must list at least one multiplier (one stage each)");

        /// <summary>{0}: the kind as written.</summary>
        public static readonly DiagnosticDescriptor UnknownAttentionKind = Error("DDPM015",
            "Unknown attention kind",
            "Unknown attention kind '{0}'; use None, Linear or Full");

        /// <summary>{0}: setting name, {1}: value.</summary>
        public static readonly DiagnosticDescriptor OddDim = Error("DDPM016",
            "Dim must be even",
            "{0} must be even and >= 4 (the sinusoidal time embedding splits it into sine and cosine halves), got {1}");

        /// <summary>{0}: setting name, {1}: the largest value, {2}: value.</summary>
        public static readonly DiagnosticDescriptor TooLargeToGenerate = Error("DDPM017",
            "Setting too large to generate",
            "{0} must be <= {1}, got {2}; the generator writes every table entry and block out as code");

        /// <summary>{0}: the objective as written (only a cast can give one: YAML names are DDPM105).</summary>
        public static readonly DiagnosticDescriptor UnknownObjective = Error("DDPM018",
            "Unknown objective",
            "Unknown objective '{0}'; use Eps, X0 or V");

        /// <summary>{0}: the model, {1}: the type named. At the Schedule argument.</summary>
        public static readonly DiagnosticDescriptor ScheduleNotDeclared = Error("DDPM019",
            "Schedule is not a noise schedule",
            "{0}'s Schedule must be a class declared with [NoiseSchedule], got '{1}'");

        /// <summary>{0}: the spec file, {1}: the type, {2}: the other declaration. At the spec's name that gives the type.</summary>
        public static readonly DiagnosticDescriptor GeneratedTypeDeclaredTwice = Error("DDPM020",
            "Two declarations generate the same type",
            "{0} generates {1}, which {2} also declares; rename one of them (a spec's schedule is named after its model unless schedule.name says otherwise)");

        // DDPM021-025: class-conditional models (SpecValidator, both front ends).

        /// <summary>{0}: the classes setting's name, {1}: value. At the value.</summary>
        public static readonly DiagnosticDescriptor ClassesOutOfRange = Error("DDPM021",
            "Classes must be at least 2",
            "{0} must be at least 2 (the number of classes of the training data), got {1}; leave it out for an unconditional model");

        /// <summary>{0}: the dropout setting's name, {1}: value. At the value.</summary>
        public static readonly DiagnosticDescriptor ClassDropoutOutOfRange = Error("DDPM022",
            "Class dropout outside [0, 1)",
            "{0} must be in [0, 1) (the share of training labels replaced by the null class, e.g. 0.1), got {1}");

        /// <summary>{0}: the guidance setting's name, {1}: value. At the value.</summary>
        public static readonly DiagnosticDescriptor GuidanceOutOfRange = Error("DDPM023",
            "Guidance scale below 0",
            "{0} must be at least 0 (1 = no guidance, 3 is typical), got {1}");

        /// <summary>{0}: the guidance setting's name, {1}: its value, {2}: the dropout setting's name. At the guidance.</summary>
        public static readonly DiagnosticDescriptor GuidanceWithoutDropout = Error("DDPM024",
            "Guidance needs class dropout",
            "{0} = {1} extrapolates from the unconditional (null-class) prediction, which the model never learns with {2} = 0; set {2} above 0 (0.1 is usual) or {0} to 1");

        /// <summary>{0}: the setting's name, {1}: the classes setting's name. At the setting.</summary>
        public static readonly DiagnosticDescriptor ClassSettingWithoutClasses = Error("DDPM025",
            "Class setting on an unconditional model",
            "{0} only applies to a class-conditional model; set {1} to the number of classes, or remove {0}");

        // DDPM3xx: how the samplers treat the model's prediction (SpecValidator, both front ends).

        /// <summary>{0}: setting name, {1}: value. At the value.</summary>
        public static readonly DiagnosticDescriptor DynamicThresholdOutOfRange = Error("DDPM301",
            "Dynamic threshold outside [0, 1)",
            "{0} must be in [0, 1) (the quantile of |x_0| per image, e.g. 0.995; 0 turns thresholding off), got {1}");

        /// <summary>{0}: the clip setting's name, {1}: the threshold setting's name. At the threshold.</summary>
        public static readonly DiagnosticDescriptor ClipX0WithDynamicThreshold = Error("DDPM302",
            "Clipping and dynamic thresholding together",
            "{0} and {1} cannot be used together: dynamic thresholding already maps the predicted x_0 into [-1, 1]; choose one");

        // DDPM1xx: YAML specs. The message formats are SpecYaml's (shared with the runtime's SpecFile errors).

        /// <summary>{0}: the YAML parser's message. At YamlDotNet's error mark.</summary>
        public static readonly DiagnosticDescriptor YamlMalformed = Error("DDPM101",
            "Invalid YAML in a spec", SpecMessages.Malformed);

        /// <summary>{0}: key, {1}: section, {2}: " (did you mean 'x'?)" or "", {3}: allowed keys. At the key.</summary>
        public static readonly DiagnosticDescriptor YamlUnknownKey = Error("DDPM102",
            "Unknown key in a spec", SpecMessages.UnknownKey);

        /// <summary>{0}: key path, {1}: expected type, {2}: what was written. At the value.</summary>
        public static readonly DiagnosticDescriptor YamlWrongType = Error("DDPM103",
            "Value of the wrong type in a spec", SpecMessages.WrongType);

        /// <summary>{0}: section, {1}: key, {2}: what the key means. At the section's key.</summary>
        public static readonly DiagnosticDescriptor YamlMissingKey = Error("DDPM104",
            "Required key missing in a spec", SpecMessages.MissingKey);

        /// <summary>{0}: key path, {1}: value, {2}: " (did you mean 'x'?)" or "", {3}: allowed values. At the value.</summary>
        public static readonly DiagnosticDescriptor YamlUnknownValue = Error("DDPM105",
            "Unknown value in a spec", SpecMessages.UnknownValue);

        /// <summary>{0}: key path, {1}: the allowed range, {2}: value. At the value.</summary>
        public static readonly DiagnosticDescriptor YamlOutOfRange = Error("DDPM106",
            "Training setting out of range", SpecMessages.OutOfRange);

        /// <summary>{0}: key path, {1}: what a valid name is, {2}: value. At the value.</summary>
        public static readonly DiagnosticDescriptor YamlInvalidName = Error("DDPM107",
            "Invalid C# name in a spec", SpecMessages.InvalidName);

        /// <summary>The descriptor of a SpecYaml error.</summary>
        public static DiagnosticDescriptor For(SpecErrorKind kind) => kind switch
        {
            SpecErrorKind.Malformed => YamlMalformed,
            SpecErrorKind.UnknownKey => YamlUnknownKey,
            SpecErrorKind.WrongType => YamlWrongType,
            SpecErrorKind.MissingKey => YamlMissingKey,
            SpecErrorKind.UnknownValue => YamlUnknownValue,
            SpecErrorKind.OutOfRange => YamlOutOfRange,
            _ => YamlInvalidName,
        };

        /// <summary>{0}: the exception message.</summary>
        public static readonly DiagnosticDescriptor InternalError = Error("DDPM099",
            "Ddpm generator failed",
            "The Ddpm generator failed unexpectedly: {0}. Please report this with the declaration that caused it.");
    }
}
