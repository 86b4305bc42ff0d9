using System.IO.Compression;
using System.Text;
using Ddpm.Interop;

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
}
