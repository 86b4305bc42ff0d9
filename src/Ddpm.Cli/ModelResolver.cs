using Ddpm.Models;
using Ddpm.Specs;

namespace Ddpm.Cli;

/// <summary>A compiled model chosen by spec file or name, with the training settings to use.</summary>
internal sealed record ResolvedModel(ModelEntry Entry, TrainingSpec Training, string SpecName);

internal static class ModelResolver
{
    /// <summary>Finds the compiled model for a spec path (reading its training section) or a model name.</summary>
    public static ResolvedModel Resolve(string target)
    {
        if (IsSpecPath(target))
        {
            Options.RequireFile(target, "a spec file");
            SpecFile spec;
            try { spec = SpecFile.Load(target); }
            catch (SpecFileException e) { throw new UsageException(e.Message); }
            var entry = ModelCatalog.Find(spec.ModelName)
                ?? throw new UsageException($"'{target}' declares model '{spec.ModelName}', which is not compiled into this ddpm; " +
                                            $"put the spec in specs/ and rebuild. Compiled models: {ModelCatalog.Describe()}.");
            if (spec.ArchitectureHash != entry.ArchitectureHash)
                throw new UsageException($"'{target}' changed its model or schedule since ddpm was built; rebuild (dotnet build) to regenerate {entry.Name}.");
            return new ResolvedModel(entry, spec.Training.Clone(), Path.GetFileNameWithoutExtension(target));
        }
        var byName = ModelCatalog.Find(target)
            ?? throw new UsageException($"Unknown model or spec '{target}'. Compiled models: {ModelCatalog.Describe()}.");
        return new ResolvedModel(byName, byName.Training.Clone(), Path.GetFileNameWithoutExtension(byName.SpecFile));
    }

    /// <summary>
    /// The declaration of a spec file that reads without errors but whose model is not compiled into this ddpm (a spec of
    /// the user's own project); null for anything else, which <see cref="Resolve"/> then resolves or reports.
    /// </summary>
    public static SpecDocument? Uncompiled(string target)
    {
        if (!IsSpecPath(target) || !File.Exists(target)) return null;
        var document = SpecYaml.Read(File.ReadAllText(target));
        return document.Errors.Count == 0 && document.Model is { } model && ModelCatalog.Find(model.Name) is null ? document : null;
    }

    private static bool IsSpecPath(string target) =>
        target.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || target.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);
}
