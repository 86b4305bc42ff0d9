using System.IO.Compression;
using System.Text;
using Ddpm.Interop;
using Google.Protobuf;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26's weak spots: DataParallel's "module." prefix, a pickle that asks to run code, where a grid of a checkpoint
/// outside a run folder goes, and the bounds of eval --samples, train --batch-size and --resume's data set.
/// </summary>
[Collection("cli")]
public sealed class WeakSpotTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-weak-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    private static string FirstLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim();

    [Fact]
    public void A_module_prefix_is_named_in_one_line_and_strip_prefix_imports_it()
    {
        string checkpoint = OutputSafetyTests.TinyCheckpoint(root);
        string weights = Path.Combine(root, "parallel.safetensors");
        Assert.Equal(0, Ddpm("export", checkpoint, "--out", weights).Code);
        using (var file = WeightFile.Read(weights))
            WeightFile.Write(weights, WeightFormat.Safetensors, file.Tensors.Select(p => ("module." + p.Name, p.Value)).ToList());

        string imported = Path.Combine(root, "imported.ckpt");
        var (code, _, error) = Ddpm("import", weights, "--model", "TinyUNet", "--out", imported);
        Assert.Equal(1, code);
        Assert.Equal($"ddpm: {weights}: every key starts with 'module.': strip it with --strip-prefix module.", error.Trim());
        var (stripped, output, strippedError) = Ddpm("import", weights, "--model", "TinyUNet", "--out", imported, "--strip-prefix", "module.");
        Assert.True(stripped == 0, strippedError);
        Assert.StartsWith($"wrote {imported}: TinyUNet", output);
    }

    [Fact]
    public void A_pickle_that_asks_to_run_code_is_refused_in_those_words_and_runs_nothing()
    {
        string marker = Path.Combine(root, "ran");
        string weights = Path.Combine(root, "evil.pt");
        using (var zip = ZipFile.Open(weights, ZipArchiveMode.Create))
        using (var pickle = new BinaryWriter(zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open()))
        {
            byte[] command = Encoding.ASCII.GetBytes($"touch {marker}");
            pickle.Write([0x80, 2]); // PROTO 2
            pickle.Write(Encoding.ASCII.GetBytes("cposix\nsystem\n")); // GLOBAL posix.system
            pickle.Write((byte)'X'); // BINUNICODE
            pickle.Write(command.Length);
            pickle.Write(command);
            pickle.Write([0x85, (byte)'R', (byte)'.']); // TUPLE1, REDUCE, STOP
        }
        var (code, _, error) = Ddpm("import", weights, "--model", "TinyUNet", "--out", Path.Combine(root, "x.ckpt"));
        Assert.Equal(1, code);
        Assert.Equal($"ddpm: {weights} is refused: this file asks to run code (posix.system); ddpm reads only tensors and plain containers.", error.Trim());
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void A_checkpoint_outside_a_run_folder_gets_its_grid_beside_it()
    {
        string checkpoint = OutputSafetyTests.TinyCheckpoint(root, "loose.ckpt");
        var (code, output, error) = Ddpm("sample", checkpoint, "--count", "1", "--sampler", "ddim", "--steps", "2", "--engine", "torch");
        Assert.True(code == 0, error);
        string png = Path.Combine(root, "loose-samples.png");
        Assert.Contains($"wrote {png}:", output);
        Assert.True(File.Exists(png));
        Assert.Equal(Path.Combine(Path.GetPathRoot(png)!, "x-samples.png"), SampleCommand.DefaultPng(Path.Combine(Path.GetPathRoot(png)!, "x.ckpt")));
        Assert.Equal(Path.Combine(root, "run", "samples.png"), SampleCommand.DefaultPng(Path.Combine(root, "run", "checkpoints", "last.ckpt")));
    }

    [Fact]
    public void Eval_samples_is_capped_and_a_batch_larger_than_the_data_or_another_data_set_on_resume_is_refused()
    {
        var (samplesCode, _, samplesError) = Ddpm("eval", "x.ckpt", "--samples", "10000000");
        Assert.Equal(2, samplesCode);
        Assert.Equal($"ddpm: --samples must be from 2 to {EvalCommand.MaxSamples}, got 10000000.", FirstLine(samplesError));

        string run = Path.Combine(root, "run");
        var (batchCode, _, batchError) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "1", "--batch-size", "99999999");
        Assert.Equal(2, batchCode);
        Assert.Equal("ddpm: --batch-size 99999999 is larger than the data set ('synthetic', 512 images); use at most 512.", FirstLine(batchError));
        Assert.False(Directory.Exists(run));

        var (trainCode, _, trainError) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "1", "--sample-every", "0", "--final-samples", "0", "--eval-every", "0");
        Assert.True(trainCode == 0, trainError);
        string config = File.ReadAllText(Path.Combine(run, "config.yaml"));
        var (resumeCode, _, resumeError) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--resume", "--dataset", "cifar10");
        Assert.Equal(2, resumeCode);
        Assert.StartsWith("ddpm: --resume: the checkpoint was trained on 'synthetic', this run asks for 'cifar10'; resume on the same data (--dataset synthetic)",
                          FirstLine(resumeError));
        Assert.Equal(config, File.ReadAllText(Path.Combine(run, "config.yaml")));
    }

    /// <summary>Asserts one <c>ddpm:</c> line starting with <paramref name="start"/>, no stack trace, and that <paramref name="input"/> is unchanged and <paramref name="output"/> absent.</summary>
    private static void RefusedInOneLine((int Code, string Out, string Err) run, int code, string start, string input, byte[] before, string output)
    {
        Assert.True(run.Code == code, run.Err);
        string line = Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim();
        Assert.StartsWith(start, line);
        Assert.DoesNotContain("   at ", run.Err);
        Assert.Equal(before, File.ReadAllBytes(input));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Crafted_onnx_metadata_is_checked_against_the_spec_ranges_and_the_graphs_declared_shape()
    {
        string checkpoint = OutputSafetyTests.TinyCheckpoint(root);
        string exported = Path.Combine(root, "model.onnx");
        Assert.Equal(0, Ddpm("export", checkpoint, "--format", "onnx", "--out", exported).Code);
        string png = Path.Combine(root, "grid.png");
        (string Key, string Value, string Message)[] cases =
        [
            ("ddpm.image_size", "12000", "metadata 'ddpm.image_size' is 12000; it must be in [1, 4096]."),
            ("ddpm.image_size", "60000", "metadata 'ddpm.image_size' is 60000; it must be in [1, 4096]."),
            ("ddpm.image_size", "16", "metadata 'ddpm.image_size' is 16, but the graph's 'images' input declares height 8; the file was edited after ddpm export."),
            ("ddpm.channels", "3", "metadata 'ddpm.channels' is 3, but the graph's 'images' input declares channels 1; the file was edited after ddpm export."),
            ("ddpm.channels", "40000", "metadata 'ddpm.channels' is 40000; it must be in [1, 3]."),
            ("ddpm.dynamic_threshold", "7", "metadata 'ddpm.dynamic_threshold' is 7; it must be in [0, 1)."),
        ];
        foreach (var (key, value, message) in cases)
        {
            var model = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(exported));
            Assert.Single(model.MetadataProps, p => p.Key == key).Value = value;
            string crafted = Path.Combine(root, "crafted.onnx");
            File.WriteAllBytes(crafted, model.ToByteArray());
            byte[] before = File.ReadAllBytes(crafted);
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            var run = Ddpm("sample", crafted, "--out", png, "--count", "2", "--sampler", "ddim", "--steps", "2");
            allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            RefusedInOneLine(run, 1, $"ddpm: {crafted}: {message}", crafted, before, png);
            Assert.True(allocated < 64L << 20, $"{key} {value}: {allocated:N0} bytes allocated before the refusal");
        }
    }

    /// <summary>A safetensors file of one tensor: its 8-byte header length, <paramref name="header"/> (JSON), then <paramref name="dataBytes"/> zero bytes.</summary>
    private string SafetensorsFile(string name, string header, int dataBytes)
    {
        string path = Path.Combine(root, name);
        byte[] json = Encoding.UTF8.GetBytes(header);
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)json.Length));
        file.Write(json);
        file.Write(new byte[dataBytes]);
        return path;
    }

    [Fact]
    public void A_safetensors_shape_too_large_for_the_file_and_a_header_over_the_limit_are_named()
    {
        string imported = Path.Combine(root, "imported.ckpt");
        string huge = SafetensorsFile("huge.safetensors",
            """{"final_conv.weight":{"dtype":"F32","shape":[2147483648,2147483648,2147483648,1],"data_offsets":[0,16]}}""", 16);
        byte[] before = File.ReadAllBytes(huge);
        RefusedInOneLine(Ddpm("import", huge, "--model", "TinyUNet", "--out", imported), 1,
                         $"ddpm: {huge} has tensor 'final_conv.weight' (F32 [2147483648, 2147483648, 2147483648, 1]) whose shape needs more bytes than the 16 bytes of tensor data in the file.",
                         huge, before, imported);

        // A 101 MiB header in a file that holds it: refused by the limit, which the message names.
        string large = Path.Combine(root, "large.safetensors");
        const long headerBytes = 101L << 20;
        using (var file = File.Create(large))
        {
            file.Write(BitConverter.GetBytes((ulong)headerBytes));
            file.SetLength(8 + headerBytes + 64);
        }
        var run = Ddpm("import", large, "--model", "TinyUNet", "--out", imported);
        Assert.True(run.Code == 1, run.Err);
        Assert.StartsWith($"ddpm: {large} has a {headerBytes:N0}-byte safetensors header, more than the {100L << 20:N0} bytes (100 MiB) ddpm reads",
                          Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim());
        Assert.False(File.Exists(imported));
    }

    [Fact]
    public void Eval_of_an_onnx_model_says_to_sample_it_with_ddpm_sample()
    {
        string onnx = Path.Combine(root, "model.onnx");
        File.WriteAllBytes(onnx, [1, 2, 3]);
        string json = Path.Combine(root, "scores.json");
        RefusedInOneLine(Ddpm("eval", onnx, "--dataset", "synthetic", "--json", json), 2,
                         $"ddpm: {onnx} is an ONNX model: ONNX models are sampled with ddpm sample {onnx}; score the grid it writes with ddpm eval GRID.png --dataset NAME.",
                         onnx, [1, 2, 3], json);
    }
}
