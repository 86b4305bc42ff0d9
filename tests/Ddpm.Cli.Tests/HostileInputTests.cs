using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Ddpm.Data;
using Ddpm.Interop;
using Ddpm.Training;
using static TorchSharp.torch;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26, items 3 to 5: decompression bombs are refused from their headers with one shared limit; NaN and infinities are
/// refused in imported weights, in checkpoints, in drawn images and in images to score; `ddpm eval` refuses bad inputs in
/// well under a second on a fresh cache, without training a feature net. Every file is made here (no Python).
/// </summary>
[Collection("cli")]
public sealed class HostileInputTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    private const int Size = 8;
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-hostile-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    /// <summary>A fresh labelled 8x8 IDX data set (its feature net cache is its own folder, empty): "idx:FOLDER".</summary>
    private string FreshDataset(string name = "shapes")
    {
        string folder = Path.Combine(root, name);
        Directory.CreateDirectory(folder);
        var random = new Random(1);
        var pixels = new byte[64 * Size * Size];
        random.NextBytes(pixels);
        var images = new ImageSet(pixels, 64, 1, Size, Size);
        var labels = Enumerable.Range(0, 64).Select(i => (byte)(i % 4)).ToArray();
        Idx.WriteImages(Path.Combine(folder, FashionMnist.TrainImagesFile), images);
        Idx.WriteLabels(Path.Combine(folder, FashionMnist.TrainLabelsFile), labels);
        Idx.WriteImages(Path.Combine(folder, FashionMnist.TestImagesFile), images);
        Idx.WriteLabels(Path.Combine(folder, FashionMnist.TestLabelsFile), labels);
        File.WriteAllLines(Path.Combine(folder, "classes.txt"), ["a", "b", "c", "d"]);
        return "idx:" + folder;
    }

    /// <summary>
    /// A PNG whose IHDR claims <paramref name="width"/> x <paramref name="height"/> 8-bit grey pixels, with a tiny valid zlib
    /// stream (a few rows of zeros) as its only IDAT: a few hundred bytes that would decode to width x height bytes and more.
    /// </summary>
    internal static byte[] BombPng(int width, int height)
    {
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth; colour type 0 (grey), compression 0, filter 0, no interlace
        Chunk(png, "IHDR", header);
        using (var data = new MemoryStream())
        {
            using (var zlib = new ZLibStream(data, CompressionLevel.SmallestSize, leaveOpen: true))
                zlib.Write(new byte[4 * (width + 1)]);
            Chunk(png, "IDAT", data.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        png.Write(length);
        byte[] typed = [.. Encoding.ASCII.GetBytes(type), .. data];
        png.Write(typed);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typed));
        png.Write(crc);
    }

    internal static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>A .npy header of <paramref name="shape"/> (uint8) followed by only <paramref name="bodyBytes"/> bytes.</summary>
    private static void NpyHeaderOnly(string path, string shape, int bodyBytes)
    {
        string header = $"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}";
        header = header.PadRight(((header.Length + 11) / 64 + 1) * 64 - 11) + "\n";
        using var file = File.Create(path);
        file.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        file.Write(BitConverter.GetBytes((ushort)header.Length));
        file.Write(Encoding.ASCII.GetBytes(header));
        file.Write(new byte[bodyBytes]);
    }

    [Fact]
    public void Images_that_claim_more_pixels_than_ddpm_decodes_are_refused_from_their_headers_with_one_message()
    {
        string dataset = FreshDataset();
        string bomb = Path.Combine(root, "bomb.png");
        File.WriteAllBytes(bomb, BombPng(20000, 20000));
        Assert.True(new FileInfo(bomb).Length < 1000);
        string folder = Path.Combine(root, "folder");
        Directory.CreateDirectory(folder);
        File.Copy(bomb, Path.Combine(folder, "bomb.png"));
        string npy = Path.Combine(root, "huge.npy");
        NpyHeaderOnly(npy, "(1, 20000, 20000)", 64);
        string tall = Path.Combine(root, "tall.npy");
        NpyHeaderOnly(tall, "(1, 1, 20000, 20000)", 64);

        string Limit(string path) => $"ddpm: {path}: is 20000x20000 pixels, more than the {ImageFolder.MaxPixels:N0} (4096 x 4096) that ddpm decodes; shrink it first.";
        foreach (var (input, message) in new[] { (bomb, Limit(bomb)), (folder, Limit(Path.Combine(folder, "bomb.png"))), (npy, Limit(npy)), (tall, Limit(tall)) })
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var (code, _, error) = Ddpm("eval", input, "--dataset", dataset);
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            Assert.True(code == 2, error);
            Assert.Equal(message, Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim());
            Assert.True(allocated < 64L << 20, $"{input}: {allocated:N0} bytes allocated before the refusal");
        }
        // The training loader keeps the same rule and message.
        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(folder, Size, 1));
        Assert.Equal(Limit(Path.Combine(folder, "bomb.png"))["ddpm: ".Length..], e.Message);
        // A .npy header that promises more bytes than the file holds allocates nothing for them.
        string promise = Path.Combine(root, "promise.npy");
        NpyHeaderOnly(promise, "(200000, 8, 8)", 64);
        var (promiseCode, _, promiseError) = Ddpm("eval", promise, "--dataset", dataset);
        Assert.Equal(2, promiseCode);
        Assert.StartsWith($"ddpm: {promise}: the array should hold 12,800,000 bytes after its header, but the file has 64.", promiseError);
    }

    /// <summary>A TinyUNet checkpoint after one step, with <paramref name="edit"/> applied to its raw and EMA weights.</summary>
    private string EditedCheckpoint(string name, Func<string, Tensor, Tensor> edit)
    {
        string good = OutputSafetyTests.TinyCheckpoint(root, "good-" + name);
        using var loaded = Checkpoint.Load(good);
        List<(string Name, Tensor Value)> Edited(IReadOnlyList<(string Name, Tensor Value)> state) =>
            state.Select(p => (p.Name, edit(p.Name, p.Value.clone()).DetachFromDisposeScope())).ToList();
        using var edited = new Checkpoint(loaded.Step, loaded.Epoch, loaded.Batch, loaded.ScheduleFingerprint, loaded.SpecText,
                                          Edited(loaded.Model), loaded.Ema is null ? null : Edited(loaded.Ema), loaded.OptimizerState,
                                          loaded.RngState.clone().DetachFromDisposeScope(), loaded.TorchThreads);
        string path = Path.Combine(root, name);
        edited.Save(path);
        return path;
    }

    [Fact]
    public void NaN_and_infinite_values_are_refused_in_imports_checkpoints_drawn_images_and_images_to_score()
    {
        // ddpm import: the tensor is named.
        string good = OutputSafetyTests.TinyCheckpoint(root);
        string weights = Path.Combine(root, "nan.safetensors");
        Assert.Equal(0, Ddpm("export", good, "--out", weights).Code);
        using (var file = WeightFile.Read(weights))
        {
            var tensors = file.Tensors.Select(p => (p.Name, p.Name == "final_conv.weight" ? p.Value.clone().index_fill_(0, tensor(new long[] { 0 }), double.NaN) : p.Value)).ToList();
            WeightFile.Write(weights, WeightFormat.Safetensors, tensors);
        }
        string imported = Path.Combine(root, "imported.ckpt");
        var (importCode, _, importError) = Ddpm("import", weights, "--model", "TinyUNet", "--out", imported);
        Assert.Equal(1, importCode);
        Assert.StartsWith($"ddpm: {weights}: tensor 'final_conv.weight' holds 8 NaN or infinite values (of 8); ddpm imports finite weights only", importError);
        Assert.False(File.Exists(imported));

        // Checkpoint load (sample, eval, export and --resume all load through it): the tensor is named.
        string infinite = EditedCheckpoint("inf.ckpt", (name, t) => name == "final_conv.bias" ? t.fill_(double.PositiveInfinity) : t);
        string png = Path.Combine(root, "inf.png");
        var (loadCode, _, loadError) = Ddpm("sample", infinite, "--out", png, "--count", "2", "--engine", "torch");
        Assert.Equal(1, loadCode);
        Assert.Equal($"ddpm: Checkpoint '{infinite}': its weights are not finite: tensor 'final_conv.bias' holds 1 NaN or infinite value (of 1); " +
                     "the run diverged before it was saved. Use an earlier checkpoint.", loadError.Trim());
        Assert.False(File.Exists(png));

        // Finite weights so large that sampling overflows: the draw stops, no black grid is written.
        string huge = EditedCheckpoint("huge.ckpt", (name, t) => name.StartsWith("final_conv.", StringComparison.Ordinal) ? t.fill_(3e38) : t);
        string hugePng = Path.Combine(root, "huge.png");
        var (drawCode, _, drawError) = Ddpm("sample", huge, "--out", hugePng, "--count", "2", "--sampler", "ddim", "--steps", "3", "--x0-limit", "none", "--engine", "torch");
        Assert.Equal(1, drawCode);
        Assert.StartsWith("ddpm: Sampling produced NaN or infinite values in 2 of 2 images, so no image was written", drawError);
        Assert.Single(drawError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(hugePng));
        // The same on ONNX Runtime: the checkpoint's graph (--engine onnx) and an exported model.onnx.
        string onnx = Path.Combine(root, "huge.onnx");
        Assert.Equal(0, Ddpm("export", huge, "--out", onnx).Code);
        foreach (string[] args in new[] { new[] { huge, "--engine", "onnx" }, new[] { onnx } })
        {
            var (onnxCode, _, onnxError) = Ddpm(["sample", .. args, "--out", hugePng, "--count", "2", "--sampler", "ddim", "--steps", "3"]);
            Assert.True(onnxCode == 1, onnxError);
            Assert.StartsWith("ddpm: Sampling produced NaN or infinite values in 2 of 2 images, so no image was written", onnxError);
            Assert.False(File.Exists(hugePng));
        }

        // ddpm eval: an all-NaN .npy is not images.
        string nan = Path.Combine(root, "nan.npy");
        Npy.Write(nan, [4, Size, Size], Enumerable.Repeat(float.NaN, 4 * Size * Size).ToArray());
        var (evalCode, _, evalError) = Ddpm("eval", nan, "--dataset", FreshDataset());
        Assert.Equal(2, evalCode);
        Assert.StartsWith($"ddpm: {nan}: 256 of its 256 values are NaN or infinite; these are not images", evalError);
    }

    [Fact]
    public void The_finite_check_of_the_seed_models_weights_is_one_cheap_pass()
    {
        global::Ddpm.Models.ModelLibrary.Load();
        using var model = DiffusionModel.CreateByName("FashionMnistUNet");
        var state = model.Module.state_dict().Select(p => (p.Key, p.Value)).ToList();
        long values = state.Sum(p => p.Value.numel());
        Assert.Null(FiniteWeights.FirstNonFinite(state));
        var times = new List<double>();
        for (int i = 0; i < 21; i++)
        {
            var watch = Stopwatch.StartNew();
            Assert.Null(FiniteWeights.FirstNonFinite(state));
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        log.WriteLine($"finite check of FashionMnistUNet ({values:N0} values in {state.Count} tensors): median {times[10]:F2} ms, fastest {times[0]:F2} ms, slowest {times[^1]:F2} ms");
        Assert.True(times[10] < 100, $"median {times[10]:F2} ms");
        using (no_grad()) state[^3].Value.view(-1)[5].fill_(float.NegativeInfinity);
        Assert.Equal((state[^3].Key, 1L, state[^3].Value.numel()), FiniteWeights.FirstNonFinite(state)!.Value);
    }

    [Fact]
    public void Eval_refuses_bad_inputs_in_under_a_second_on_a_fresh_cache_without_training_a_feature_net()
    {
        string dataset = FreshDataset("fresh");
        string cacheFolder = dataset["idx:".Length..];
        string tiny = Path.Combine(root, "one.png");
        using (var bitmap = new SkiaSharp.SKBitmap(1, 1))
        using (var stream = File.Create(tiny))
            bitmap.Encode(stream, SkiaSharp.SKEncodedImageFormat.Png, 100);
        string checkpoint = OutputSafetyTests.TinyCheckpoint(root);
        string conditional = Path.Combine(root, "conditional.ckpt");
        using (var model = DiffusionModel.Create<TinyConditionalUNet>(seed: 3))
        {
            model.Train(Datasets.Synthetic(1, 8, count: 16), new Ddpm.Specs.TrainingSpec { Dataset = "synthetic", BatchSize = 8, Steps = 1, Seed = 5 });
            model.Save(conditional);
        }
        string? savedData = Environment.GetEnvironmentVariable(FashionMnist.DataEnvironmentVariable);
        Environment.SetEnvironmentVariable(FashionMnist.DataEnvironmentVariable, Path.Combine(root, "empty-cache"));
        try
        {
            Ddpm("eval"); // the command line's own start-up (JIT), not what is timed
            (string[] Args, string Start)[] cases =
            [
                ([tiny, "--dataset", dataset], $"ddpm: {tiny}: a 1x1 image is not a grid of 8x8 tiles"),
                ([checkpoint, "--dataset", dataset, "--sampler", "ddim", "--steps", "99"], "ddpm: --steps 99 exceeds the schedule's 20 timesteps."),
                ([conditional, "--dataset", dataset, "--class", "nosuch"], "ddpm: --class nosuch: "),
            ];
            foreach (var (args, start) in cases)
            {
                var watch = Stopwatch.StartNew();
                var (code, output, error) = Ddpm(["eval", .. args]);
                double seconds = watch.Elapsed.TotalSeconds;
                Assert.True(code == 2, error);
                Assert.StartsWith(start, Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim());
                Assert.True(seconds < 1, $"{string.Join(' ', args)}: {seconds:F2} s");
                Assert.DoesNotContain("feature net", output);
                Assert.Empty(Directory.GetFiles(cacheFolder, "feature-net*"));
            }
            Assert.False(Directory.Exists(Path.Combine(root, "empty-cache")) && Directory.EnumerateFileSystemEntries(Path.Combine(root, "empty-cache")).Any());
        }
        finally
        {
            Environment.SetEnvironmentVariable(FashionMnist.DataEnvironmentVariable, savedData);
        }
    }
}
