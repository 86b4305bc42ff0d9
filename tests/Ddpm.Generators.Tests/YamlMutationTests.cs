using System.Diagnostics;
using System.Text;
using Microsoft.CodeAnalysis;
using Xunit.Abstractions;
using CatalogEmitter = Ddpm.Generators.Emit.CatalogEmitter;
using ScheduleEmitter = Ddpm.Generators.Emit.ScheduleEmitter;
using UNetEmitter = Ddpm.Generators.Emit.UNetEmitter;
using YamlParser = Ddpm.Generators.YamlParser;

namespace Ddpm.Generators.Tests;

/// <summary>
/// Property test: seeded random mutations of the shipped specs (deleted, swapped, duplicated and
/// re-indented lines, swapped values, truncations, random bytes, odd values) never make the
/// generator or the runtime's reader throw, and every failure is a DDPM diagnostic (never DDPM099,
/// the generator's own failure).
/// </summary>
public class YamlMutationTests(ITestOutputHelper output)
{
    const int Mutations = 2000;
    const int ThroughTheDriverEvery = 3; // every 3rd mutant runs through the whole generator driver

    static readonly string[] OddValues =
    {
        "", "~", "null", "0", "-1", "1.5", "1e400", "-0", "99999999999", "0x10", "nan", ".inf", "true", "\"28\"", "'x'", "[]", "[1, [2]]",
        "{}", "{ a: 1 }", "[1, 2", "{ a: ", "&anchor 3", "*anchor", "!!str 5", "!custom x", "|\n  block", ">", "- 1", "# comment", "\t4",
        "a: b: c", "\"unterminated", "'", "@", "`", "%", "\u00e9\u00e8", "\u0000", "\uFEFF", "model", "linear", "full", "FashionMnistUNet",
        "&loop [1, *loop, *loop]", new string('[', 70) + new string(']', 70), "{ a: { b: { c: { d: [1, { e: 2 }] } } } }",
    };

    [Fact]
    public void Random_mutations_of_the_shipped_specs_never_throw_and_only_report_DDPM_diagnostics()
    {
        var specs = SpecFiles.Names.Select(SpecFiles.Read).ToArray();
        var random = new Random(20240604);
        var compilation = GeneratorHarness.Compilation();
        var watch = Stopwatch.StartNew();
        int throughDriver = 0, valid = 0;
        var ids = new SortedDictionary<string, int>(StringComparer.Ordinal);

        for (int i = 0; i < Mutations; i++)
        {
            string mutant = Mutate(specs[random.Next(specs.Length)], random);
            string context = $"mutation {i}:\n{mutant}";
            IReadOnlyList<string> reported;
            if (i % ThroughTheDriverEvery == 0)
            {
                throughDriver++;
                var driver = GeneratorHarness.Driver(("specs/mutant.yaml", mutant)).RunGenerators(compilation);
                GeneratorRunResult result = driver.GetRunResult().Results.Single();
                Assert.True(result.Exception == null, $"{context}\n{result.Exception}");
                reported = result.Diagnostics.Select(d => d.Id).ToList();
                if (reported.Count == 0 && result.GeneratedSources.Length > 0) valid++;
            }
            else
            {
                reported = ParseAndEmit(mutant, context);
            }
            foreach (string id in reported)
            {
                Assert.True(id.StartsWith("DDPM", StringComparison.Ordinal) && id != "DDPM099", $"{context}\n{id}");
                ids[id] = ids.TryGetValue(id, out int n) ? n + 1 : 1;
            }
            ReadAtRunTime(mutant, context);
        }

        output.WriteLine($"{Mutations} mutants ({throughDriver} through the driver, {valid} of those valid) in {watch.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(string.Join(", ", ids.Select(p => $"{p.Key} x{p.Value}")));
        // The mutations reach the YAML diagnostics and the shared rules alike.
        Assert.Contains("DDPM101", ids.Keys);
        Assert.Contains("DDPM102", ids.Keys);
        Assert.Contains("DDPM103", ids.Keys);
        Assert.Contains("DDPM104", ids.Keys);
        Assert.True(ids.Keys.Count(id => id.StartsWith("DDPM0", StringComparison.Ordinal)) >= 3, string.Join(", ", ids.Keys));
    }

    /// <summary>The parser unguarded (the driver's guard would hide a throw as DDPM099), then every emitter it enables.</summary>
    static IReadOnlyList<string> ParseAndEmit(string mutant, string context)
    {
        try
        {
            var result = YamlParser.Parse("specs/mutant.yaml", mutant, CancellationToken.None);
            var ids = result.Diagnostics.Concat(result.UNet?.Diagnostics ?? default).Concat(result.Schedule?.Diagnostics ?? default)
                .Select(d => d.Descriptor.Id).ToList();
            if (result.UNet?.Spec is { } unet) Assert.NotEmpty(UNetEmitter.Emit(unet));
            if (result.Schedule?.Spec is { } schedule) Assert.NotEmpty(ScheduleEmitter.Emit(schedule));
            if (result.Catalog is { } catalog) Assert.NotEmpty(CatalogEmitter.Emit(catalog));
            return ids;
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Fail($"{context}\n{e}");
            throw;
        }
    }

    /// <summary>The runtime reads the same text with the same reader: a spec, or one SpecFileException.</summary>
    static void ReadAtRunTime(string mutant, string context)
    {
        try
        {
            Ddpm.Specs.SpecFile.Parse(mutant, "mutant.yaml");
        }
        catch (Ddpm.Specs.SpecFileException e)
        {
            Assert.StartsWith("mutant.yaml:", e.Message);
        }
        catch (Exception e)
        {
            Assert.Fail($"{context}\n{e}");
        }
    }

    static string Mutate(string spec, Random random)
    {
        var lines = spec.Split('\n').ToList();
        int count = 1 + random.Next(3);
        string text = spec;
        for (int m = 0; m < count; m++)
        {
            lines = text.Split('\n').ToList();
            int at = random.Next(lines.Count);
            switch (random.Next(10))
            {
                case 0: // delete a line
                    lines.RemoveAt(at);
                    break;
                case 1: // duplicate a line (duplicated keys)
                    lines.Insert(at, lines[at]);
                    break;
                case 2: // swap two lines
                    int other = random.Next(lines.Count);
                    (lines[at], lines[other]) = (lines[other], lines[at]);
                    break;
                case 3: // wrong indentation
                    lines[at] = random.Next(3) switch
                    {
                        0 => lines[at].TrimStart(),
                        1 => new string(' ', 1 + random.Next(5)) + lines[at],
                        _ => "\t" + lines[at],
                    };
                    break;
                case 4: // swap the values of two key: value lines
                {
                    int a = random.Next(lines.Count), b = random.Next(lines.Count);
                    int ca = lines[a].IndexOf(": ", StringComparison.Ordinal), cb = lines[b].IndexOf(": ", StringComparison.Ordinal);
                    if (ca > 0 && cb > 0)
                        (lines[a], lines[b]) = (lines[a][..(ca + 2)] + lines[b][(cb + 2)..], lines[b][..(cb + 2)] + lines[a][(ca + 2)..]);
                    break;
                }
                case 5: // an odd value
                {
                    int colon = lines[at].IndexOf(": ", StringComparison.Ordinal);
                    string value = OddValues[random.Next(OddValues.Length)];
                    lines[at] = colon > 0 ? lines[at][..(colon + 2)] + value : lines[at] + value;
                    break;
                }
                case 6: // truncate
                    return string.Join('\n', lines)[..random.Next(text.Length + 1)];
                case 7: // random bytes
                {
                    string joined = string.Join('\n', lines);
                    int position = random.Next(joined.Length + 1);
                    var noise = new StringBuilder();
                    for (int k = 1 + random.Next(8); k > 0; k--)
                        noise.Append(random.Next(4) == 0 ? (char)random.Next(0, 32) : random.Next(4) == 0 ? (char)random.Next(0x80, 0x3000) : (char)random.Next(32, 127));
                    text = joined.Insert(position, noise.ToString());
                    continue;
                }
                case 8: // a typo in a key
                {
                    int colon = lines[at].IndexOf(':');
                    string line = lines[at];
                    int start = line.Length - line.TrimStart().Length;
                    if (colon > start + 1)
                    {
                        int k = start + random.Next(colon - start);
                        lines[at] = line.Remove(k, 1).Insert(k, ((char)('a' + random.Next(26))).ToString());
                    }
                    break;
                }
                default: // delete a character
                {
                    string joined = string.Join('\n', lines);
                    text = joined.Length == 0 ? joined : joined.Remove(random.Next(joined.Length), 1);
                    continue;
                }
            }
            text = string.Join('\n', lines);
        }
        return text;
    }
}
