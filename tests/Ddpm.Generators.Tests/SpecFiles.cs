using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace Ddpm.Generators.Tests;

/// <summary>The shipped specs (specs/ at the repository root) and a runner for YAML through the generator.</summary>
public static class SpecFiles
{
    public static readonly string[] Names = { "fashion-mnist.yaml", "fashion-mnist-tuned.yaml", "fashion-mnist-conditional.yaml", "cifar10.yaml", "mnist-cosine.yaml" };

    public static string Folder([CallerFilePath] string testFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(testFile)!, "..", "..", "specs"));

    public static string Read(string name) => File.ReadAllText(Path.Combine(Folder(), name));

    /// <summary>Runs the generator on YAML files (and optional C# sources) the way the compiler would.</summary>
    public static (GeneratorRunResult Result, Compilation Output) Run(params (string Path, string Text)[] yaml) =>
        GeneratorHarness.Run(Array.Empty<string>(), yaml);

    /// <summary>Runs the generator on one spec text as "specs/test.yaml".</summary>
    public static (GeneratorRunResult Result, Compilation Output) Run(string yaml) => Run(("specs/test.yaml", yaml));

    public static string Generated(GeneratorRunResult result, string hintName) =>
        result.GeneratedSources.Single(s => s.HintName == hintName).SourceText.ToString();
}
