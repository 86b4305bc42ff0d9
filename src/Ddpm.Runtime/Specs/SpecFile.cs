namespace Ddpm.Specs;

/// <summary>
/// A YAML spec read at run time with the reader the generator uses at build time: the model it
/// declares, its architecture hash (compare with ModelEntry.ArchitectureHash to detect a spec
/// edited after the build) and its training settings, so `ddpm train specs/x.yaml` needs nothing else.
/// </summary>
public sealed class SpecFile
{
    private SpecFile(string path, SpecDocument document)
    {
        Path = path;
        ModelName = document.Model!.Name;
        Namespace = document.Model.Namespace;
        ScheduleName = document.Schedule?.Name;
        ArchitectureHash = document.ArchitectureHash;
        Training = document.Training;
        HasTraining = document.HasTraining;
    }

    /// <summary>The path the spec was read from (as given to <see cref="Load"/> or <see cref="Parse"/>).</summary>
    public string Path { get; }
    /// <summary>The model's class name (`model.name`).</summary>
    public string ModelName { get; }
    /// <summary>The namespace of the generated classes (`model.namespace`); "" when not written.</summary>
    public string Namespace { get; }
    /// <summary>`schedule.name` when written (else the generator derived it from the model's name).</summary>
    public string? ScheduleName { get; }
    /// <summary>SpecYaml.ArchitectureHash of the model and schedule sections: equal to the compiled entry's when the spec is unchanged.</summary>
    public string ArchitectureHash { get; }
    /// <summary>The training settings; the defaults when the spec has no training section.</summary>
    public TrainingSpec Training { get; }
    /// <summary>Whether the spec has a `training:` section.</summary>
    public bool HasTraining { get; }

    /// <summary>Reads a spec file. Throws SpecFileException (every error as file:line:column) when it is not a valid spec.</summary>
    public static SpecFile Load(string path) => Parse(File.ReadAllText(path), path);

    /// <summary>Reads a spec's text; <paramref name="path"/> names it in errors.</summary>
    public static SpecFile Parse(string text, string path)
    {
        SpecDocument document = SpecYaml.Read(text);
        if (document.Errors.Count > 0)
            throw new SpecFileException(path, document.Errors);
        if (!document.IsSpec || document.Model == null)
            throw new SpecFileException(path, new[]
            {
                new SpecError(SpecErrorKind.MissingKey, "model", SpecSpan.FileStart, "The spec", "model", "the U-Net to generate"),
            });
        return new SpecFile(path, document);
    }
}

/// <summary>A spec file with errors; the message lists each as `file:line:column: DDPM1xx: message`.</summary>
public sealed class SpecFileException : Exception
{
    /// <summary>Creates the exception; the message has one line per error.</summary>
    /// <param name="path">The spec file, as named in the messages.</param>
    /// <param name="errors">The errors, at least one.</param>
    public SpecFileException(string path, IReadOnlyList<SpecError> errors)
        : base(string.Join(Environment.NewLine, errors.Select(e => $"{path}:{e.Span.Line}:{e.Span.Column}: {e.Id}: {e.Message}")))
    {
        Path = path;
        Errors = errors;
    }

    /// <summary>The spec file the errors are in.</summary>
    public string Path { get; }
    /// <summary>Every error found, in reading order.</summary>
    public IReadOnlyList<SpecError> Errors { get; }
    /// <summary>Line of the first error (1-based).</summary>
    public int Line => Errors[0].Span.Line;
    /// <summary>Column of the first error (1-based).</summary>
    public int Column => Errors[0].Span.Column;
}
