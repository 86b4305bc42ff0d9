using System.Runtime.CompilerServices;
using System.Xml.Linq;

namespace Ddpm.Generators.Tests;

/// <summary>
/// The spec core (src/SpecCore, and the part of it Ddpm.Core owns: schedules, samplers, objectives, number ranges) is
/// compiled into the generator as internal code of its own namespace, and into the runtime and Ddpm.Core as public API:
/// the analyzer exposes nothing but the generator, and the two copies never clash.
/// </summary>
public class SpecCoreTests
{
    static string Repository([CallerFilePath] string testFile = "") => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(testFile)!, "..", ".."));

    [Fact]
    public void The_generator_exports_only_the_generator_and_its_tracking_names()
    {
        var exported = typeof(DdpmGenerator).Assembly.GetExportedTypes().Select(t => t.FullName).Order(StringComparer.Ordinal);
        Assert.Equal(new[] { "Ddpm.Generators.DdpmGenerator", "Ddpm.Generators.TrackingNames" }, exported);
    }

    [Fact]
    public void The_core_is_internal_in_the_generator_and_public_in_the_runtime()
    {
        var generatorCore = typeof(DdpmGenerator).Assembly.GetTypes().Where(t => t.Namespace == "Ddpm.Generators.SpecCore" && !t.IsNested).ToList();
        Assert.Contains(generatorCore, t => t.Name == "SpecYaml");
        Assert.Contains(generatorCore, t => t.Name == "ScheduleMath");
        Assert.All(generatorCore, t => Assert.False(t.IsPublic, t.Name));
        var exported = typeof(Ddpm.Specs.SpecYaml).Assembly.GetExportedTypes().Concat(typeof(Ddpm.Schedules.ScheduleTables).Assembly.GetExportedTypes()).ToList();
        Assert.Equal("Ddpm.Core", typeof(Ddpm.Schedules.ScheduleTables).Assembly.GetName().Name);
        foreach (var type in generatorCore.Where(t => !t.Name.StartsWith('<')))
            Assert.Contains(exported, t => t.Name == type.Name && t.Namespace is "Ddpm" or "Ddpm.Specs" or "Ddpm.Schedules");
    }

    [Fact]
    public void The_generator_compiles_no_file_of_another_project()
    {
        var project = XDocument.Load(Path.Combine(Repository(), "src", "Ddpm.Generators", "Ddpm.Generators.csproj"));
        var included = project.Descendants("Compile").Select(c => (string?)c.Attribute("Include")).Where(i => i != null).ToList();
        Assert.Equal(2, included.Count);
        Assert.Equal("../SpecCore/**/*.cs", included[0]);
        // Besides the folder, only spec-core files that Ddpm.Core owns, each written for both (internal in the generator).
        var coreFiles = included[1]!.Split(';');
        Assert.Equal(7, coreFiles.Length);
        foreach (string file in coreFiles)
        {
            Assert.StartsWith("../Ddpm.Core/", file);
            Assert.Contains("#if DDPM_GENERATOR", File.ReadAllText(Path.Combine(Repository(), "src", "Ddpm.Generators", file)));
        }
        Assert.False(File.Exists(Path.Combine(Repository(), "src", "SpecCore", "SpecCore.csproj")), "the spec core is a folder, not a project");
    }
}
