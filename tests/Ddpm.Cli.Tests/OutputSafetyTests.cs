using System.Security.Cryptography;
using Ddpm.Data;
using Ddpm.Specs;
using Ddpm.Training;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26, item 1: an output that is one of the command's inputs (after symbolic links), or an existing checkpoint that a
/// command would replace with something else, is refused with exit code 2 and one line, and every file stays as it was.
/// </summary>
[Collection("cli")] // training changes torch's thread count and seed
public sealed class OutputSafetyTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-outputs-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    /// <summary>A checkpoint of TinyUNet after one step.</summary>
    internal static string TinyCheckpoint(string root, string name = "self.ckpt")
    {
        using var model = DiffusionModel.Create<TinyUNet>(seed: 3);
        model.Train(Datasets.Synthetic(1, 8, count: 16), new TrainingSpec { Dataset = "synthetic", BatchSize = 8, Steps = 1, EmaDecay = 0.5, Seed = 5 });
        string path = Path.Combine(root, name);
        model.Save(path);
        return path;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Exit code 2, one line that starts with <paramref name="start"/>, no stack trace.</summary>
    internal static void AssertRefused((int Code, string Out, string Err) result, string start)
    {
        var (code, _, error) = result;
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(code == 2, $"exit code {code}, stderr: {error}");
        Assert.Single(lines);
        Assert.True(lines[0].StartsWith(start, StringComparison.Ordinal), $"expected a line starting '{start}', got '{lines[0]}'");
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void An_output_that_is_an_input_or_a_checkpoint_is_refused_and_nothing_changes_on_disk()
    {
        string checkpoint = TinyCheckpoint(root);
        string copy = Path.Combine(root, "copy.ckpt");
        File.Copy(checkpoint, copy);
        string link = Path.Combine(root, "link.ckpt");
        File.CreateSymbolicLink(link, checkpoint);
        string linkedFolder = Path.Combine(root, "linked");
        Directory.CreateSymbolicLink(linkedFolder, root);
        string npy = Path.Combine(root, "good.npy");
        Npy.Write(npy, [4, 8, 8], new byte[4 * 64]);
        string weights = Path.Combine(root, "weights.safetensors");
        Assert.Equal(0, Ddpm("export", checkpoint, "--out", weights).Code);
        var files = new[] { checkpoint, copy, npy, weights, weights + ".yaml" };
        var before = files.ToDictionary(f => f, Hash);
        var listing = Directory.GetFileSystemEntries(root).Order().ToArray();

        (string[] Args, string Start)[] cases =
        [
            (["export", checkpoint, "--out", checkpoint, "--format", "pytorch"], $"ddpm: --out {checkpoint} is the input {checkpoint}: writing it would destroy"),
            (["sample", checkpoint, "--out", checkpoint], $"ddpm: --out {checkpoint} is the input {checkpoint}: writing it would destroy"),
            // The same file through a symbolic link, through a linked folder, and spelled with "..".
            (["sample", checkpoint, "--out", link], $"ddpm: --out {link} is the input {checkpoint}: writing it would destroy"),
            (["sample", link, "--out", Path.Combine(linkedFolder, "self.ckpt")], $"ddpm: --out {Path.Combine(linkedFolder, "self.ckpt")} is the input {link}: writing it would destroy"),
            (["export", checkpoint, "--out", Path.Combine(root, "x", "..", "self.ckpt"), "--format", "safetensors"], $"ddpm: --out {Path.Combine(root, "x", "..", "self.ckpt")} is the input {checkpoint}:"),
            (["eval", npy, "--dataset", "fashion-mnist", "--json", checkpoint], $"ddpm: --json {checkpoint} is a Ddpm checkpoint, and this command would replace it with another kind of file"),
            (["eval", npy, "--dataset", "fashion-mnist", "--json", npy], $"ddpm: --json {npy} is the input {npy}: writing it would destroy"),
            (["eval", checkpoint, "--save-samples", link], $"ddpm: --save-samples {link} is the input {checkpoint}:"),
            // Another checkpoint than the input: still replaced only by a checkpoint.
            (["sample", checkpoint, "--out", copy], $"ddpm: --out {copy} is a Ddpm checkpoint, and this command would replace it with another kind of file"),
            (["export", checkpoint, "--out", copy, "--format", "pytorch"], $"ddpm: --out {copy} is a Ddpm checkpoint"),
            (["inspect", "TinyUNet", "--plot", copy], $"ddpm: --plot {copy} is a Ddpm checkpoint"),
            (["import", weights, "--model", "TinyUNet", "--out", weights, "--overwrite"], $"ddpm: --out {weights} is the input {weights}: writing it would destroy"),
        ];
        foreach (var (args, start) in cases)
        {
            AssertRefused(Ddpm(args), start);
            foreach (var (file, hash) in before) Assert.True(hash == Hash(file), $"{string.Join(' ', args)} changed {file}");
            Assert.Equal(listing, Directory.GetFileSystemEntries(root).Order().ToArray());
        }

        // A checkpoint may still be replaced by a checkpoint when asked to.
        var (code, _, error) = Ddpm("import", weights, "--model", "TinyUNet", "--out", copy, "--overwrite");
        Assert.True(code == 0, error);
        Assert.True(Checkpoint.IsCheckpoint(copy));
    }
}
