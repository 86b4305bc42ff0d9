using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using DdpmGenerator = Ddpm.Generators.DdpmGenerator;

namespace Ddpm.Generators.Tests;

/// <summary>Runs the generator on in-memory sources and YAML files, the way the compiler would.</summary>
public static class GeneratorHarness
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        // The test host loads the generator too; user code never references it, so neither do we.
        return platform
            .Where(path => !path.EndsWith("Ddpm.Generators.dll", StringComparison.Ordinal))
            .Concat(new[] { typeof(TorchSharp.torch).Assembly.Location, typeof(Ddpm.Blocks.ResnetBlock).Assembly.Location })
            .Distinct()
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray();
    });

    public static CSharpParseOptions ParseOptions { get; } = new(LanguageVersion.Latest);

    public static CSharpCompilation Compilation(params string[] sources) =>
        CSharpCompilation.Create("GeneratorTest",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Source{i}.cs")),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver(params (string Path, string Text)[] additionalFiles) =>
        CSharpGeneratorDriver.Create(
            new[] { new DdpmGenerator().AsSourceGenerator() },
            additionalFiles.Select(f => (AdditionalText)new InMemoryAdditionalText(f.Path, f.Text)),
            ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Runs the generator once; returns its result and the compilation with the generated sources.</summary>
    public static (GeneratorRunResult Result, Compilation Output) Run(string[] sources, params (string Path, string Text)[] additionalFiles)
    {
        var driver = Driver(additionalFiles).RunGeneratorsAndUpdateCompilation(Compilation(sources), out var output, out _);
        return (driver.GetRunResult().Results.Single(), output);
    }

    public static (GeneratorRunResult Result, Compilation Output) Run(string source) => Run(new[] { source });

    /// <summary>Errors of the compilation that includes the generated code.</summary>
    public static Diagnostic[] CompileErrors(Compilation output) =>
        output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToArray();

    /// <summary>
    /// Fails when a pipeline value holds Roslyn objects (symbols, syntax, compilations, texts) anywhere in
    /// its object graph: such values defeat the generator's cache.
    /// </summary>
    public static void AssertPlainValues(object? value, string path) =>
        AssertPlainValues(value, path, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static void AssertPlainValues(object? value, string path, HashSet<object> seen)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum) return;
        if (!value.GetType().IsValueType && !seen.Add(value)) return;
        Assert.False(value is ISymbol or SyntaxNode or Microsoft.CodeAnalysis.Compilation or SemanticModel or SyntaxTree or AdditionalText or SourceText,
                     $"{path} holds a {value.GetType().Name}");
        if (value is DiagnosticDescriptor) return; // static, shared, and equatable
        if (value is System.Collections.IEnumerable items)
        {
            int i = 0;
            foreach (object? item in items) AssertPlainValues(item, $"{path}[{i++}]", seen);
            return;
        }
        foreach (var field in value.GetType().GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic))
            AssertPlainValues(field.GetValue(value), $"{path}.{field.Name}", seen);
    }

    public sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }
}
