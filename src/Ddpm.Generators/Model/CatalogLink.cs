namespace Ddpm.Generators.Model
{
    /// <summary>
    /// An attributed U-Net's link to the model catalog: the schedule its [UNet(Schedule = typeof(...))] names
    /// (null when it names none, so the model is a module only) and the C# file it is declared in.
    /// </summary>
    /// <param name="Model">The attributed model class.</param>
    /// <param name="ScheduleName">The named schedule's namespace-qualified name, or null.</param>
    /// <param name="SourceFile">The file name of the declaration, the catalog's "spec file" of the model.</param>
    internal sealed record CatalogLink(TypeTarget Model, string? ScheduleName, string SourceFile, EquatableArray<DiagnosticInfo> Diagnostics);
}
