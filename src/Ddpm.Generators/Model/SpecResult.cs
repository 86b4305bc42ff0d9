namespace Ddpm.Generators.Model
{
    /// <summary>
    /// What parsing and validating one declaration gives: the spec when it is valid, and the
    /// diagnostics. Sources are emitted from Spec alone, so moving a diagnostic's text re-emits nothing.
    /// </summary>
    internal sealed record SpecResult<T>(T? Spec, EquatableArray<DiagnosticInfo> Diagnostics) where T : class;
}
