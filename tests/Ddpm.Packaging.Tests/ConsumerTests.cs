using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Ddpm.Training;
using SkiaSharp;

namespace Ddpm.Packaging.Tests;

/// <summary>
/// A user's first hour, from the packed packages only: the repository's packages are packed into a temporary folder
/// (under a version no cache has seen), the template is installed from its package into an isolated `dotnet new`
/// home, a project is made outside the repository with `dotnet new ddpm`, restored from that folder (third-party
/// packages from the machine's NuGet cache), built, run, broken, and the tool is installed into a temporary tool path.
/// </summary>
public sealed class ConsumerTests : IDisposable
{
    private static readonly string[] PackedProjects =
        ["src/Ddpm.Core/Ddpm.Core.csproj", "src/Ddpm.Runtime/Ddpm.Runtime.csproj", "src/Ddpm.Generators/Ddpm.Generators.csproj", "src/Ddpm/Ddpm.csproj",
         "src/Ddpm.Templates/Ddpm.Templates.csproj", "src/Ddpm.Cli/Ddpm.Cli.csproj", "src/Ddpm.Onnx/Ddpm.Onnx.csproj"];

    private readonly string root = Directory.CreateTempSubdirectory("ddpm-consumer-").FullName;
    private readonly string repository = FindRepository();
    // The machine's NuGet package folder, for commands run in the repository.
    private string? machinePackages;

    public void Dispose()
    {
        try { Directory.Delete(root, recursive: true); }
        catch (IOException) { } // a child process may still hold a file for a moment; the OS cleans temp
    }

    [SkippableFact]
    public void A_new_project_from_the_packages_builds_trains_samples_reports_broken_declarations_and_the_tool_runs()
    {
        string globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        Skip.IfNot(Directory.Exists(Path.Combine(globalPackages, "torchsharp")),
                   $"the machine's NuGet cache ({globalPackages}) has no TorchSharp: restore the solution first");

        // 1. Pack, under a version of this run only: a package cache never serves a stale build of ours.
        string versionPrefix = Regex.Match(File.ReadAllText(Path.Combine(repository, "Directory.Build.props")),
                                           "<VersionPrefix>([^<]+)</VersionPrefix>").Groups[1].Value;
        Assert.Matches(@"^\d+\.\d+\.\d+$", versionPrefix);
        string version = $"{versionPrefix}-e2e.{DateTime.UtcNow:yyyyMMddHHmmss}";
        string feed = Path.Combine(root, "feed");
        // One MSBuild run for the six projects: a solution filter of the repository's solution.
        string filter = Path.Combine(root, "packages.slnf");
        File.WriteAllText(filter, System.Text.Json.JsonSerializer.Serialize(new
        {
            solution = new { path = Path.Combine(repository, "Ddpm.sln"), projects = PackedProjects.Select(p => p.Replace('/', '\\')).ToArray() },
        }));
        // The pack restores the repository's own projects: with the machine's package folder, as their builds did, or
        // their obj/project.assets.json would point into this test's temporary home once it is deleted.
        machinePackages = globalPackages;
        Dotnet(repository, Generous(4), "pack", filter, "-c", "Release", "-o", feed,
               $"-p:PackageVersion={version}", "-nodeReuse:false", "-v", "q", "-nologo");
        CheckPackages(feed, version);

        // 2. The template, installed from its package into a home of this test's own.
        string project = Path.Combine(root, "work", "MyDiffusion");
        Directory.CreateDirectory(Path.GetDirectoryName(project)!);
        Dotnet(root, Generous(1), "new", "install", Path.Combine(feed, $"Ddpm.Templates.{version}.nupkg"));
        Dotnet(Path.GetDirectoryName(project)!, Generous(1), "new", "ddpm", "-n", "MyDiffusion");
        Assert.True(File.Exists(Path.Combine(project, "specs", "my-diffusion.yaml")));
        string csproj = File.ReadAllText(Path.Combine(project, "MyDiffusion.csproj"));
        Assert.Contains($"<PackageReference Include=\"Ddpm\" Version=\"{version}\" />", csproj);
        File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="ddpm" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(root, "packages")}" />
              </config>
              <fallbackPackageFolders>
                <add key="machine" value="{globalPackages}" />
              </fallbackPackageFolders>
            </configuration>
            """);

        // 3. Build: the YAML spec and the attributed class became typed modules.
        // Hard links instead of copies of libtorch for every platform (1.2 GB): disk only, the build is the user's.
        Dotnet(project, Generous(4), "build", "-c", "Release", "-nodeReuse:false", "-v", "q", "-nologo", HardLinks);
        string generated = Path.Combine(project, "obj", "Release", "net10.0", "generated", "Ddpm.Generators", "Ddpm.Generators.DdpmGenerator");
        string fromYaml = File.ReadAllText(Directory.GetFiles(generated, "MyDiffusionUNet.g.cs", SearchOption.AllDirectories).Single());
        string fromAttributes = File.ReadAllText(Directory.GetFiles(generated, "MyDiffusionSmallUNet.g.cs", SearchOption.AllDirectories).Single());
        Assert.Contains("partial class MyDiffusionUNet : ", fromYaml);
        Assert.Contains("partial class MyDiffusionSmallUNet : ", fromAttributes);

        // 4. Run: 3 training steps on synthetic images, a 2-call DPM-Solver++ grid, a checkpoint.
        string run = Dotnet(project, Generous(3), "run", "-c", "Release", "--no-build", "--", "3", "2");
        Assert.Matches(@"models: MyDiffusionUNet \([\d,]+ parameters, specs/my-diffusion\.yaml\), MyDiffusionSmallUNet \([\d,]+ parameters, Models\.cs\)", run);
        Assert.Contains("step 3/3", run);
        using (var grid = SKBitmap.Decode(Path.Combine(project, "runs", "samples.png")))
            Assert.Equal((4 * 28 * 2 + 5 * 2 * 2, 4 * 28 * 2 + 5 * 2 * 2), (grid.Width, grid.Height)); // 4x4 of 28 px, padding 2, x2
        using (var checkpoint = Checkpoint.Load(Path.Combine(project, "runs", "my-diffusion.ckpt")))
        {
            Assert.Equal(3, checkpoint.Step);
            Assert.Contains("model: MyDiffusionUNet", checkpoint.SpecText);
        }

        // 5. A broken declaration fails the consumer's build with the DDPM diagnostic at its file and line.
        string spec = Path.Combine(project, "specs", "my-diffusion.yaml");
        File.WriteAllText(spec, File.ReadAllText(spec).Replace("  dim_mults: [1, 2, 4]", "  dim_mults: [1, 0, 4]"));
        var (code, broken) = DotnetResult(project, Generous(3), "build", "-c", "Release", "-nodeReuse:false", "-v", "q", "-nologo", HardLinks);
        Assert.NotEqual(0, code);
        Assert.Contains($"{Path.Combine("specs", "my-diffusion.yaml")}(10,18): error DDPM013: dim_mults[1] must be >= 1, got 0", broken);

        // 6. The tool, installed from its package into a tool path of this test's own.
        string tools = Path.Combine(root, "tools");
        Dotnet(root, Generous(3), "tool", "install", "Ddpm.Tool", "--tool-path", tools, "--add-source", feed, "--version", version);
        string ddpm = Path.Combine(tools, "ddpm");
        Assert.StartsWith(versionPrefix, Run(ddpm, project, Generous(1), "--version").Trim());
        File.WriteAllText(spec, File.ReadAllText(spec).Replace("  dim_mults: [1, 0, 4]", "  dim_mults: [1, 2, 4]"));
        string inspect = Run(ddpm, project, Generous(1), "inspect", "specs/my-diffusion.yaml");
        Assert.StartsWith("MyDiffusionUNet (spec my-diffusion.yaml, not compiled into this ddpm)", inspect);
        Assert.Contains("input: [B, 1, 28, 28] images and [B] timesteps -> the predicted velocity v of the same shape", inspect);
    }

    private const string HardLinks = "-p:CreateHardLinksForCopyLocalIfPossible=true";

    /// <summary>The seven packages (the tool as its pointer and its linux-x64 package) with complete metadata.</summary>
    private static void CheckPackages(string feed, string version)
    {
        var nuspecs = new Dictionary<string, XElement>();
        foreach (string id in new[] { "Ddpm", "Ddpm.Core", "Ddpm.Runtime", "Ddpm.Generators", "Ddpm.Templates", "Ddpm.Tool", "Ddpm.Tool.linux-x64", "Ddpm.Onnx" })
        {
            string path = Path.Combine(feed, $"{id}.{version}.nupkg");
            Assert.True(File.Exists(path), $"{id} {version} was not packed");
            using var zip = ZipFile.OpenRead(path);
            var metadata = XDocument.Load(zip.Entries.Single(e => e.FullName == $"{id}.nuspec").Open()).Root!.Elements().First();
            string Value(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value ?? "";
            Assert.Equal((id, version, "MIT"), (Value("id"), Value("version"), Value("license")));
            Assert.False(string.IsNullOrWhiteSpace(Value("description")), $"{id}: no description");
            Assert.Contains("diffusion", Value("tags"));
            if (id != "Ddpm.Tool") // the pointer package of a RID-specific tool holds no files of its own
            {
                Assert.Equal("README.md", Value("readme"));
                Assert.Contains(zip.Entries, e => e.FullName == "README.md");
            }
            nuspecs[id] = metadata;

            var files = zip.Entries.Select(e => e.FullName).ToHashSet();
            switch (id)
            {
                case "Ddpm.Runtime":
                    Assert.Superset(new HashSet<string> { "lib/net10.0/Ddpm.Runtime.dll", "lib/net10.0/Ddpm.Runtime.xml",
                        "buildTransitive/Ddpm.Runtime.targets", "buildTransitive/NativeCompat.targets", "buildTransitive/NativeCompat.cs",
                        "buildTransitive/NativeAllocator.targets", "buildTransitive/NativeAllocator.cs" }, files);
                    Assert.True(File.Exists(Path.Combine(feed, $"Ddpm.Runtime.{version}.snupkg")), "no symbols package");
                    break;
                case "Ddpm.Generators":
                    Assert.Superset(new HashSet<string> { "analyzers/dotnet/cs/Ddpm.Generators.dll", "analyzers/dotnet/cs/YamlDotNet.dll",
                        "build/Ddpm.Generators.props", "buildTransitive/Ddpm.Generators.props" }, files);
                    Assert.DoesNotContain(files, f => f.StartsWith("lib/", StringComparison.Ordinal)); // nothing flows to the consumer's output
                    Assert.Equal("true", metadata.Elements().Single(e => e.Name.LocalName == "developmentDependency").Value);
                    break;
                case "Ddpm.Templates":
                    Assert.Contains("content/ddpm/.template.config/template.json", files);
                    break;
                case "Ddpm.Tool.linux-x64":
                    Assert.Superset(new HashSet<string> { "tools/net10.0/linux-x64/ddpm.dll", "tools/net10.0/linux-x64/libLibTorchSharp.so",
                        "tools/net10.0/linux-x64/libtcmalloc_minimal.so.4", "tools/net10.0/linux-x64/Ddpm.Onnx.dll",
                        "tools/net10.0/linux-x64/libonnxruntime.so" }, files);
                    break;
                case "Ddpm.Onnx":
                    Assert.Superset(new HashSet<string> { "lib/net10.0/Ddpm.Onnx.dll", "lib/net10.0/Ddpm.Onnx.xml" }, files);
                    // ONNX Runtime and Ddpm.Core (schedules, samplers, PNG grids); nothing of TorchSharp, not even through Ddpm.Runtime.
                    var onnxDependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(d => d.Attribute("id")!.Value).ToHashSet();
                    Assert.Contains("Microsoft.ML.OnnxRuntime", onnxDependencies);
                    Assert.Contains("Ddpm.Core", onnxDependencies);
                    Assert.DoesNotContain(onnxDependencies, d => d.Contains("TorchSharp", StringComparison.OrdinalIgnoreCase) || (d.StartsWith("Ddpm", StringComparison.Ordinal) && d != "Ddpm.Core"));
                    break;
                case "Ddpm.Core":
                    Assert.Superset(new HashSet<string> { "lib/net10.0/Ddpm.Core.dll", "lib/net10.0/Ddpm.Core.xml" }, files);
                    // Shared by both backends, so it carries neither: SkiaSharp for PNGs, nothing else.
                    var coreDependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(d => d.Attribute("id")!.Value).ToHashSet();
                    Assert.DoesNotContain(coreDependencies, d => d.Contains("TorchSharp", StringComparison.OrdinalIgnoreCase) || d.Contains("OnnxRuntime", StringComparison.Ordinal) || d.StartsWith("Ddpm", StringComparison.Ordinal));
                    break;
            }
        }
        // Ddpm is the whole set-up: both packages, with every asset (analyzers and build files included).
        var dependencies = nuspecs["Ddpm"].Descendants().Where(e => e.Name.LocalName == "dependency").ToList();
        Assert.Equal(["Ddpm.Generators", "Ddpm.Runtime"], dependencies.Select(d => d.Attribute("id")!.Value).Order());
        Assert.All(dependencies, d => Assert.Equal(version, d.Attribute("version")!.Value));
        Assert.All(dependencies, d => Assert.Null(d.Attribute("exclude")));
    }

    /// <summary>
    /// A limit that only stops a hang, not a timing: three times <paramref name="minutes"/>, which is already about twice what
    /// the step takes here (the whole test takes about 2.5 minutes), because CI runs it beside the other test assemblies on
    /// 2 cores, where a pack measured over 4 minutes.
    /// </summary>
    private static TimeSpan Generous(int minutes) => TimeSpan.FromMinutes(3 * minutes);

    private string Dotnet(string directory, TimeSpan limit, params string[] args)
    {
        var (code, output) = DotnetResult(directory, limit, args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} exited {code}:\n{output}");
        return output;
    }

    private (int Code, string Output) DotnetResult(string directory, TimeSpan limit, params string[] args) =>
        Execute("dotnet", directory, limit, args);

    private string Run(string program, string directory, TimeSpan limit, params string[] args)
    {
        var (code, output) = Execute(program, directory, limit, args);
        Assert.True(code == 0, $"{program} {string.Join(' ', args)} exited {code}:\n{output}");
        return output;
    }

    /// <summary>Runs a program with this test's isolated dotnet home; stdout and stderr together; killed at the limit.</summary>
    private (int Code, string Output) Execute(string program, string directory, TimeSpan limit, string[] args)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment["DOTNET_CLI_HOME"] = Path.Combine(root, "home"); // dotnet new's template registry
        if (directory == repository && machinePackages is not null)
            start.Environment["NUGET_PACKAGES"] = machinePackages;
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment.Remove("MSBuildExtensionsPath"); // the test host's MSBuild settings are not the child's
        start.Environment.Remove("MSBuildSDKsPath");
        start.Environment.Remove("MSBUILD_EXE_PATH");
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', args)} did not finish in {limit.TotalMinutes} min:\n{output}");
        }
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }

    private static string FindRepository()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
            if (File.Exists(Path.Combine(folder.FullName, "Ddpm.sln"))) return folder.FullName;
        throw new InvalidOperationException($"No Ddpm.sln above {AppContext.BaseDirectory}.");
    }
}
