using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddpm.Data;
using Ddpm.Imaging;
using Ddpm.Training;
using static TorchSharp.torch;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26, the property round: seeded random mutations (bit flips, truncations, appended bytes, overwritten runs and
/// header edits) of a checkpoint, a safetensors file, an <c>.npy</c> and a PNG, each given to the command that reads it.
/// Every run ends with exit 1 or 2 and one <c>ddpm:</c> line, or with exit 0 and:
/// <list type="bullet">
/// <item>for a mutation the format's own checksum covers (a checkpoint's SHA-256, a PNG chunk's CRC), output identical
/// to the unmutated input's (the mutation changed nothing the reader uses);</item>
/// <item>for a mutation no checksum covers (an <c>.npy</c>'s or a safetensors file's bytes, a PNG or checkpoint edited and
/// re-sealed with a correct checksum), a well-formed output: such a file is a different valid file, so only its result's
/// form can be asserted (a checkpoint that loads with finite weights, scores that are finite numbers).</item>
/// </list>
/// never an unhandled exception, a hang (per-case timeout) or more than 1 GiB of peak memory. The seed and the case are
/// printed on failure and the failing file is kept. DDPM_MUTATION_SEED and DDPM_MUTATION_CASES change the round.
/// </summary>
[Collection("cli")]
public sealed class MutationTests(MutationTests.Inputs inputs, Xunit.Abstractions.ITestOutputHelper log) : IClassFixture<MutationTests.Inputs>
{
    private const int CasesPerFormat = 500;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);
    private const long MemoryLimit = 1L << 30;

    /// <summary>The four unmutated inputs, their commands' outputs, and a cached feature net for the tiny data set.</summary>
    public sealed class Inputs : IDisposable
    {
        public const int Size = 8;
        public readonly string Root = Directory.CreateTempSubdirectory("ddpm-mutation-").FullName;
        public readonly string Dataset;
        public readonly string Checkpoint, Safetensors, Npy, Png;

        public Inputs()
        {
            string folder = Path.Combine(Root, "shapes");
            Directory.CreateDirectory(folder);
            var (train, trainLabels) = EvalCommandTests.Shapes(400, seed: 1);
            var (test, testLabels) = EvalCommandTests.Shapes(200, seed: 2);
            Idx.WriteImages(Path.Combine(folder, FashionMnist.TrainImagesFile), train);
            Idx.WriteLabels(Path.Combine(folder, FashionMnist.TrainLabelsFile), trainLabels);
            Idx.WriteImages(Path.Combine(folder, FashionMnist.TestImagesFile), test);
            Idx.WriteLabels(Path.Combine(folder, FashionMnist.TestLabelsFile), testLabels);
            File.WriteAllLines(Path.Combine(folder, "classes.txt"), ["vertical", "horizontal", "box", "diagonal"]);
            Dataset = "idx:" + folder;
            Expect(InProcessCli.Ddpm("eval", "--train-feature-net", "--dataset", Dataset));

            string run = Path.Combine(Root, "run");
            Expect(InProcessCli.Ddpm("train", "TinyUNet", "--steps", "2", "--out", run, "--sample-every", "0", "--final-samples", "0"));
            Checkpoint = Path.Combine(run, "checkpoints", "last.ckpt");
            Safetensors = Path.Combine(Root, "weights.safetensors");
            Expect(InProcessCli.Ddpm("export", Checkpoint, "--out", Safetensors));

            var (images, _) = EvalCommandTests.Shapes(32, seed: 3);
            Npy = Path.Combine(Root, "images.npy");
            global::Ddpm.Data.Npy.Write(Npy, [images.Count, Size, Size], images.Pixels);
            Png = Path.Combine(Root, "grid.png");
            using var signed = tensor(images.Pixels.Select(b => b / 127.5f - 1f).ToArray(), new long[] { images.Count, 1, Size, Size });
            ImageGrid.SavePng(signed, Png, columns: 8, padding: 2);
        }

        private static void Expect((int Code, string Out, string Err) result) =>
            Assert.True(result.Code == 0, $"making the unmutated inputs failed: {result.Err}");

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    /// <summary>One format: its input, how a file of it is given to ddpm, and what a successful run's output must be.</summary>
    private sealed record Format(string Name, string Input, Func<string, string, string[]> Command, string OutputName,
                                 Action<string> AssertWellFormed, Func<byte[], Random, Mutation?> HeaderEdit, Func<byte[], byte[]>? Comparable = null);

    /// <summary>A mutated file: its bytes, what was done, and whether the format's checksum covers the change.</summary>
    private sealed record Mutation(byte[] Bytes, string Description, bool Covered);

    private Format[] Formats() =>
    [
        new("checkpoint", inputs.Checkpoint,
            (file, output) => ["sample", file, "--count", "4", "--steps", "2", "--seed", "1", "--out", output], "out.png",
            AssertGridOf4, ResealedCheckpoint),
        new("safetensors", inputs.Safetensors,
            (file, output) => ["import", file, "--model", "TinyUNet", "--out", output], "out.ckpt",
            AssertFiniteCheckpoint, EditedSafetensorsHeader),
        new("npy", inputs.Npy,
            (file, output) => ["eval", file, "--dataset", inputs.Dataset, "--json", output], "out.json",
            AssertFiniteScores, EditedNpyHeader, ScoresOnly),
        new("png", inputs.Png,
            (file, output) => ["eval", file, "--dataset", inputs.Dataset, "--json", output], "out.json",
            AssertFiniteScores, ResealedPngChunk, ScoresOnly),
    ];

    [Fact]
    public void Mutated_inputs_end_in_one_line_or_the_unmutated_result_never_a_crash_hang_or_a_gigabyte()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("DDPM_MUTATION_SEED"), out int s) ? s : 20261206;
        int cases = int.TryParse(Environment.GetEnvironmentVariable("DDPM_MUTATION_CASES"), out int c) && c > 0 ? c : CasesPerFormat;
        log.WriteLine($"seed {seed}, {cases} cases per format");
        var random = new Random(seed);
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        foreach (var format in Formats())
        {
            byte[] original = File.ReadAllBytes(format.Input);
            string folder = Path.Combine(inputs.Root, format.Name);
            Directory.CreateDirectory(folder);
            var comparable = format.Comparable ?? (bytes => bytes);
            byte[] expected = comparable(Run(format, format.Input, Path.Combine(folder, "expected"), out var baseline) ?? []);
            Assert.True(baseline.Code == 0, $"{format.Name}: the unmutated input fails: {baseline.Err}");

            var outcomes = new Dictionary<string, int>();
            var formatClock = Stopwatch.StartNew();
            for (int i = 0; i < cases && failures.Count < 5; i++)
            {
                var mutation = Mutate(format, original, random);
                string file = Path.Combine(folder, $"case-{i}{Path.GetExtension(format.Input)}");
                File.WriteAllBytes(file, mutation.Bytes);
                string caseFolder = Path.Combine(folder, $"case-{i}");
                byte[]? produced = RunBounded(format, file, caseFolder, $"seed {seed}, case {i}: {mutation.Description}", out var result, out long peak);
                if (produced is not null && result.Code == 0) produced = comparable(produced);
                string? problem = Judge(format, mutation, result, produced, expected, Path.Combine(caseFolder, format.OutputName), peak);
                string outcome = result.Code == 0 ? (produced is not null && produced.AsSpan().SequenceEqual(expected) ? "0 same" : "0 other") : $"{result.Code}";
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                if (problem is null)
                {
                    File.Delete(file);
                    if (Directory.Exists(caseFolder)) Directory.Delete(caseFolder, recursive: true);
                    continue;
                }
                string kept = Path.Combine(Path.GetTempPath(), $"ddpm-mutation-{seed}-{format.Name}-{i}{Path.GetExtension(format.Input)}");
                File.Copy(file, kept, overwrite: true);
                failures.Add($"seed {seed}, {format.Name} case {i} ({mutation.Description}): {problem}; the file is kept at {kept}");
            }
            log.WriteLine($"{format.Name}: {cases} cases in {formatClock.Elapsed.TotalSeconds:F1} s; exit codes: " +
                          string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Key}: {o.Value}")));
        }
        log.WriteLine($"all formats: {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static byte[]? Run(Format format, string file, string folder, out (int Code, string Out, string Err) result)
    {
        Directory.CreateDirectory(folder);
        string output = Path.Combine(folder, format.OutputName);
        result = InProcessCli.Ddpm(format.Command(file, output));
        return File.Exists(output) ? File.ReadAllBytes(output) : null;
    }

    /// <summary>
    /// Runs one case on this thread, measuring the process's peak resident memory during it. The timeout is a thread that
    /// only waits: the case runs where libtorch runs in every other test, with no second thread allocating beside it (a
    /// collection started by another thread can free TorchSharp's temporary Scalars mid-call; docs/performance.md). A case
    /// past the timeout ends the test process with the case named, since a hung call cannot be taken back.
    /// </summary>
    private static byte[]? RunBounded(Format format, string file, string folder, string description, out (int Code, string Out, string Err) result, out long peak)
    {
        long before = PeakMemory.Reset();
        using var done = new ManualResetEventSlim();
        var timer = new Thread(() =>
        {
            if (!done.Wait(CaseTimeout))
                Environment.FailFast($"MutationTests: {format.Name} case '{description}' ({file}) did not end within {CaseTimeout.TotalSeconds:F0} s");
        })
        { IsBackground = true };
        timer.Start();
        try
        {
            var produced = Run(format, file, folder, out result); // an exception out of DdpmCli.Run is a crash: it fails the test with its stack
            peak = PeakMemory.Read() - before;
            return produced;
        }
        finally
        {
            done.Set();
            timer.Join();
        }
    }

    /// <summary>Null when the case behaved; else what went wrong.</summary>
    private static string? Judge(Format format, Mutation mutation, (int Code, string Out, string Err) result, byte[]? produced, byte[] expected,
                                 string outputPath, long peak)
    {
        if (peak > MemoryLimit) return $"peak memory grew by {peak >> 20} MiB";
        if (result.Err.Contains("   at ", StringComparison.Ordinal)) return $"a stack trace: {result.Err}";
        if (result.Code is 1 or 2)
        {
            string[] lines = result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (lines.Count(l => l.StartsWith("ddpm: ", StringComparison.Ordinal)) != 1 || lines.Length > 2)
                return $"exit {result.Code} without exactly one ddpm: line: {result.Err}";
            if (lines[0].Contains("Exception", StringComparison.Ordinal) || lines[0].Contains("please report", StringComparison.OrdinalIgnoreCase))
                return $"an internal error's words: {lines[0]}";
            return null;
        }
        if (result.Code != 0) return $"exit code {result.Code}: {result.Err}";
        if (produced is null) return "exit 0 without its output";
        if (produced.AsSpan().SequenceEqual(expected)) return null;
        if (mutation.Covered) return "exit 0 with an output that differs from the unmutated input's, though the change is under the file's checksum";
        try { format.AssertWellFormed(outputPath); }
        catch (Exception e) { return $"exit 0 with a malformed output: {e.Message}"; }
        return null;
    }

    // ---- Mutations ---------------------------------------------------------------------------------------------------

    private static Mutation Mutate(Format format, byte[] original, Random random)
    {
        // Checksums: a checkpoint's SHA-256 covers everything after its 20-byte header; a PNG's CRCs cover every chunk.
        bool covered = format.Name is "checkpoint" or "png";
        switch (random.Next(6))
        {
            case 0:
            {
                var bytes = (byte[])original.Clone();
                int flips = random.Next(1, 5);
                for (int k = 0; k < flips; k++) bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                return new(bytes, $"{flips} bit flips", covered);
            }
            case 1:
            {
                var bytes = (byte[])original.Clone();
                int at = random.Next(Math.Min(bytes.Length, 256));
                bytes[at] ^= (byte)(1 << random.Next(8));
                return new(bytes, $"a bit flip at byte {at}", covered);
            }
            case 2:
            {
                int length = random.Next(original.Length);
                // No format here is valid with its end cut off.
                return new(original[..length], $"truncated to {length} bytes", Covered: true);
            }
            case 3:
            {
                var tail = new byte[random.Next(1, 65)];
                random.NextBytes(tail);
                // Every byte the reader uses is still there: a reader that accepts the file must give the same result.
                return new([.. original, .. tail], $"{tail.Length} bytes appended", Covered: true);
            }
            case 4:
            {
                var bytes = (byte[])original.Clone();
                int at = random.Next(bytes.Length), run = Math.Min(random.Next(1, 9), bytes.Length - at);
                byte fill = Interesting[random.Next(Interesting.Length)];
                bytes.AsSpan(at, run).Fill(fill);
                return new(bytes, $"{run} bytes at {at} set to 0x{fill:X2}", covered);
            }
            default:
                return format.HeaderEdit(original, random) ?? Mutate(format, original, random);
        }
    }

    private static readonly byte[] Interesting = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE];

    private static readonly long[] InterestingNumbers =
        [0, 1, -1, 2, 7, 8, 9, 63, 64, 255, 256, 65535, 1 << 20, int.MaxValue, (long)int.MaxValue + 1, uint.MaxValue, 1L << 40, long.MaxValue, long.MinValue];

    /// <summary>A checkpoint whose metadata or tensor headers (the payload's first bytes) are edited, with the SHA-256 made right again.</summary>
    private static Mutation? ResealedCheckpoint(byte[] original, Random random)
    {
        const int header = 8 + 4 + 8;
        var bytes = (byte[])original.Clone();
        int payload = bytes.Length - header - 32;
        int at = header + random.Next(Math.Min(payload, 4096));
        if (random.Next(2) == 0) bytes[at] ^= (byte)(1 << random.Next(8));
        else if (at + 8 <= header + payload) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at), InterestingNumbers[random.Next(InterestingNumbers.Length)]);
        SHA256.HashData(bytes.AsSpan(header, payload)).CopyTo(bytes, header + payload);
        return new(bytes, $"payload byte {at} edited, checksum resealed", Covered: false);
    }

    /// <summary>A safetensors file whose JSON header has one number (a shape entry or an offset) or one dtype replaced.</summary>
    private static Mutation? EditedSafetensorsHeader(byte[] original, Random random)
    {
        long length = BinaryPrimitives.ReadInt64LittleEndian(original);
        var header = JsonNode.Parse(original.AsSpan(8, (int)length))!.AsObject();
        var tensors = header.Where(p => p.Key != "__metadata__").ToList();
        var (name, node) = tensors[random.Next(tensors.Count)];
        var entry = node!.AsObject();
        string what;
        switch (random.Next(3))
        {
            case 0:
            {
                var shape = entry["shape"]!.AsArray();
                if (shape.Count == 0) return null;
                int k = random.Next(shape.Count);
                long value = InterestingNumbers[random.Next(InterestingNumbers.Length)];
                shape[k] = value;
                what = $"{name} shape[{k}] = {value}";
                break;
            }
            case 1:
            {
                var offsets = entry["data_offsets"]!.AsArray();
                int k = random.Next(2);
                long value = random.Next(2) == 0 ? InterestingNumbers[random.Next(InterestingNumbers.Length)] : offsets[k]!.GetValue<long>() + random.Next(-8, 9);
                offsets[k] = value;
                what = $"{name} data_offsets[{k}] = {value}";
                break;
            }
            default:
            {
                string[] dtypes = ["F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "X", ""];
                string dtype = dtypes[random.Next(dtypes.Length)];
                entry["dtype"] = dtype;
                what = $"{name} dtype = '{dtype}'";
                break;
            }
        }
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var prefix = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, json.Length);
        return new([.. prefix, .. json, .. original.AsSpan(8 + (int)length)], what, Covered: false);
    }

    /// <summary>An .npy whose header dict has its shape, dtype or order replaced (padded back to the same header length when it fits).</summary>
    private static Mutation? EditedNpyHeader(byte[] original, Random random)
    {
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(original.AsSpan(8));
        string shape = random.Next(4) switch
        {
            0 => "(32, 8, 8)",
            1 => $"({InterestingNumbers[random.Next(InterestingNumbers.Length)]}, 8, 8)",
            2 => $"(32, 1, 8, {InterestingNumbers[random.Next(InterestingNumbers.Length)]})",
            _ => "(2048,)",
        };
        string[] dtypes = ["|u1", "<f4", ">f4", "<f8", "<f2", "|i1", "<i8", "|b1", "|O", "<U4", "|V8"];
        string descr = random.Next(2) == 0 ? "|u1" : dtypes[random.Next(dtypes.Length)];
        string order = random.Next(5) == 0 ? "True" : "False";
        string dict = $"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}";
        if (dict.Length + 1 > headerLength) return null;
        byte[] text = Encoding.ASCII.GetBytes(dict.PadRight(headerLength - 1) + "\n");
        var bytes = (byte[])original.Clone();
        text.CopyTo(bytes, 10);
        return new(bytes, $"header {dict}", Covered: false);
    }

    /// <summary>A PNG with one field of its IHDR, or one byte of another chunk, changed and that chunk's CRC made right again.</summary>
    private static Mutation? ResealedPngChunk(byte[] original, Random random)
    {
        var bytes = (byte[])original.Clone();
        var chunks = new List<(int Start, int Length, string Type)>();
        for (int at = 8; at + 12 <= bytes.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at));
            chunks.Add((at, length, Encoding.ASCII.GetString(bytes, at + 4, 4)));
            at += 12 + length;
        }
        var (start, chunkLength, type) = random.Next(2) == 0 ? chunks[0] : chunks[random.Next(chunks.Count)];
        if (chunkLength == 0) return null;
        string what;
        if (type == "IHDR" && random.Next(3) > 0)
        {
            // width, height (4 bytes each), bit depth, colour type, compression, filter, interlace
            int field = random.Next(7);
            if (field < 2)
            {
                long value = InterestingNumbers[random.Next(InterestingNumbers.Length)];
                BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(start + 8 + 4 * field), unchecked((uint)value));
                what = $"IHDR {(field == 0 ? "width" : "height")} = {(uint)value}";
            }
            else
            {
                byte value = (byte)random.Next(0, 17);
                bytes[start + 8 + 6 + field] = value;
                what = $"IHDR byte {6 + field} = {value}";
            }
        }
        else
        {
            int at = start + 8 + random.Next(chunkLength);
            bytes[at] ^= (byte)(1 << random.Next(8));
            what = $"{type} byte {at - start - 8} flipped";
        }
        uint crc = HostileInputTests.Crc32(bytes.AsSpan(start + 4, 4 + chunkLength));
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(start + 8 + chunkLength), crc);
        return new(bytes, what + ", CRC resealed", Covered: false);
    }

    // ---- What a successful run's output must be --------------------------------------------------------------------

    /// <summary>An eval result without what names the input file or says how long it took.</summary>
    private static byte[] ScoresOnly(byte[] json)
    {
        var root = JsonNode.Parse(json)!.AsObject();
        if (root["context"] is JsonObject context)
            foreach (string key in context.Select(p => p.Key).Where(k => k == "input" || k.EndsWith("seconds", StringComparison.Ordinal)).ToList())
                context.Remove(key);
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    private static void AssertGridOf4(string path)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(path) ?? throw new InvalidDataException("the grid is not a PNG");
        Assert.True(bitmap.Width > 0 && bitmap.Height > 0);
    }

    private static void AssertFiniteCheckpoint(string path)
    {
        using var checkpoint = global::Ddpm.Training.Checkpoint.Load(path);
        foreach (var (name, value) in checkpoint.Model)
            Assert.True(value.isfinite().all().item<bool>(), $"{name} holds non-finite values");
    }

    private static void AssertFiniteScores(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var samples = document.RootElement.GetProperty("samples");
        foreach (string key in new[] { "fid", "kid" })
            if (samples.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Number)
                Assert.True(double.IsFinite(value.GetDouble()), $"{key} is {value}");
    }
}

/// <summary>The process's peak resident memory (Linux: VmHWM, reset through /proc/self/clear_refs).</summary>
internal static class PeakMemory
{
    /// <summary>Resets the peak to the current resident size and returns it in bytes (0 where /proc is not there).</summary>
    public static long Reset()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return Read();
    }

    public static long Read()
    {
        if (!File.Exists("/proc/self/status")) return 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
        return 0;
    }
}
