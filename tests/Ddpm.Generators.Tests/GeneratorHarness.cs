extern alias generator;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using DdpmGenerator = generator::Ddpm.Generators.DdpmGenerator;

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

    public sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }
}
