extern alias generator;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using DdpmGenerator = generator::Ddpm.Generators.DdpmGenerator;

namespace Ddpm.Benchmarks;

/// <summary>The generator over every shipped declaration: a cold run, and a run after an unrelated edit.</summary>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class GeneratorBenchmarks
{
    private CSharpCompilation compilation = null!;
    private CSharpCompilation edited = null!;
    private GeneratorDriver warmDriver = null!;
    private AdditionalText[] specs = null!;

    [GlobalSetup]
    public void Setup()
    {
        string root = FindRepositoryRoot();
        var sources = Directory.GetFiles(Path.Combine(root, "src", "Ddpm.Models"), "*.cs")
            .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), path: f));
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => !p.EndsWith("Ddpm.Generators.dll", StringComparison.Ordinal))
            .Select(p => MetadataReference.CreateFromFile(p));
        compilation = CSharpCompilation.Create("Bench", sources, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("public class Unrelated { }"));
        specs = Directory.Exists(Path.Combine(root, "specs"))
            ? Directory.GetFiles(Path.Combine(root, "specs"), "*.yaml").Select(f => (AdditionalText)new FileText(f)).ToArray()
            : Array.Empty<AdditionalText>();
        warmDriver = NewDriver().RunGenerators(compilation);
    }

    private GeneratorDriver NewDriver() => CSharpGeneratorDriver.Create(new[] { new DdpmGenerator().AsSourceGenerator() }, specs);

    [Benchmark]
    public GeneratorDriver Cold() => NewDriver().RunGenerators(compilation);

    [Benchmark]
    public GeneratorDriver WarmAfterUnrelatedEdit() => warmDriver.RunGenerators(edited);

    private static string FindRepositoryRoot()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "Ddpm.sln"))) folder = folder.Parent;
        return folder?.FullName ?? throw new InvalidOperationException("Run the benchmarks from inside the repository.");
    }

    private sealed class FileText(string path) : AdditionalText
    {
        public override string Path { get; } = path;
        public override Microsoft.CodeAnalysis.Text.SourceText GetText(CancellationToken cancellationToken = default) =>
            Microsoft.CodeAnalysis.Text.SourceText.From(File.ReadAllText(Path));
    }
}
