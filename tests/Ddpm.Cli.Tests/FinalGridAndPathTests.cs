using Ddpm.Models;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26's last weak spots: the final sample grid of `ddpm train` is announced in the log and drawn again by --resume
/// when a kill lost it; output paths that cannot be written are refused up front; a folder where a file is expected is
/// named as a folder.
/// </summary>
[Collection("cli")]
public sealed class FinalGridAndPathTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-grid-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();

    /// <summary>log.txt's lines without their "yyyy-MM-dd HH:mm:ss " stamp.</summary>
    private static string[] LogLines(string run) => File.ReadAllLines(Path.Combine(run, "log.txt")).Select(l => l[20..]).ToArray();

    [Fact]
    public void The_final_grid_is_announced_and_a_resume_draws_it_when_a_kill_lost_it()
    {
        string run = Path.Combine(root, "run");
        string[] train = ["train", "TinyUNet", "--out", run, "--steps", "2", "--sample-every", "0", "--checkpoint-every", "0"];
        var (code, output, error) = Ddpm([.. train, "--final-samples", "4"]);
        Assert.True(code == 0, error);

        int timesteps = ModelCatalog.Find("TinyUNet")!.Schedule.Timesteps;
        string sampler = Options.DescribeSampler(SpecDefaults.Sampler, SpecDefaults.SamplerStepsFor(timesteps), timesteps, 0);
        string grid = Path.Combine(run, "samples", "step-000002.png");
        string announced = $"step 2: drawing the final sample grid, 4 images ({sampler}), into {grid}";
        string wrote = $"step 2: wrote {grid} ({sampler}, ";
        foreach (var lines in new[] { Lines(output), LogLines(run) })
        {
            int before = Array.IndexOf(lines, announced);
            int after = Array.FindIndex(lines, l => l.StartsWith(wrote, StringComparison.Ordinal) && l.EndsWith(" s)", StringComparison.Ordinal));
            Assert.True(before >= 0 && after == before + 1, string.Join('\n', lines));
        }
        Assert.Contains("final_samples: 4", File.ReadAllText(Path.Combine(run, "config.yaml")));

        // A kill during the grid: every step is in the checkpoint, the grid is not.
        byte[] drawn = File.ReadAllBytes(grid);
        File.Delete(grid);
        var (resumed, resumedOut, resumedError) = Ddpm([.. train, "--resume"]);
        Assert.True(resumed == 0, resumedError);
        var resumedLines = Lines(resumedOut);
        int missing = Array.IndexOf(resumedLines, $"the run is at step 2 of 2, but its final sample grid {grid} is missing: drawing it.");
        Assert.True(missing >= 0, resumedOut);
        Assert.Equal(announced, resumedLines[missing + 1]); // the run's recorded 4 images, not the option's default 64
        Assert.StartsWith(wrote, resumedLines[missing + 2]);
        Assert.DoesNotContain("nothing to do", resumedOut);
        Assert.Equal(drawn, File.ReadAllBytes(grid)); // the grid the run would have drawn
        Assert.Contains($"the run is at step 2 of 2, but its final sample grid {grid} is missing: drawing it.", LogLines(run));

        // With the grid there, or no final grid asked for, there is nothing to do.
        var (again, againOut, _) = Ddpm([.. train, "--resume"]);
        Assert.Equal((0, "nothing to do: the run is at step 2 of 2."), (again, Lines(againOut)[^1]));
        Assert.DoesNotContain("drawing", againOut);
        File.Delete(grid);
        var (none, noneOut, _) = Ddpm([.. train, "--resume", "--final-samples", "0"]);
        Assert.Equal((0, "nothing to do: the run is at step 2 of 2."), (none, Lines(noneOut)[^1]));
        Assert.False(File.Exists(grid));
    }

    [SkippableTheory]
    [InlineData("/proc/x.png")]
    [InlineData("/proc/no-such-folder/x.png")]
    [InlineData("/proc/self/status")]
    public void Inspect_refuses_a_plot_in_the_kernels_file_system_before_printing_anything(string plot)
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/proc/self/status"), "needs Linux's /proc");
        Skip.IfNot(new DriveInfo("/proc").DriveFormat == "proc", "/proc is not the proc file system here");
        var (code, output, error) = Ddpm("inspect", "TinyUNet", "--plot", plot);
        Assert.Equal((2, "", $"ddpm: --plot {plot}: cannot write there (it is in the kernel's proc file system, not on a disk)."), (code, output, error.TrimEnd()));
    }

    [Fact]
    public void Inspect_refuses_a_plot_that_is_a_folder_or_under_a_file_and_makes_a_missing_folder()
    {
        string file = Path.Combine(root, "file.txt");
        File.WriteAllText(file, "a file");
        var (folderCode, folderOut, folderError) = Ddpm("inspect", "TinyUNet", "--plot", root);
        Assert.Equal((2, "", $"ddpm: --plot {root} is a folder; give a file name."), (folderCode, folderOut, folderError.TrimEnd()));
        string underFile = Path.Combine(file, "x.png");
        var (fileCode, fileOut, fileError) = Ddpm("inspect", "TinyUNet", "--plot", underFile);
        Assert.Equal((2, ""), (fileCode, fileOut));
        Assert.Single(Lines(fileError));
        Assert.StartsWith($"ddpm: --plot {underFile}: cannot write there (", fileError);

        // A folder that can be made is made: the documented rule for every output.
        string inNewFolder = Path.Combine(root, "new", "sub", "schedule.png");
        var (code, output, error) = Ddpm("inspect", "TinyUNet", "--plot", inNewFolder);
        Assert.True(code == 0, error);
        Assert.StartsWith("TinyUNet", output);
        Assert.True(new FileInfo(inNewFolder).Length > 0);
        Assert.Equal("a file", File.ReadAllText(file));
    }

    [Fact]
    public void A_folder_where_a_file_is_expected_is_named_as_a_folder()
    {
        string Folder(string name) => Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        string spec = Folder("x.yaml"), checkpoint = Folder("x.ckpt"), weights = Folder("x.safetensors"), onnx = Folder("x.onnx"), json = Folder("a.json");
        string other = Path.Combine(root, "b.json");
        File.WriteAllText(other, "{}");
        var cases = new (string[] Args, string Error)[]
        {
            (["train", spec, "--out", Path.Combine(root, "run")], $"ddpm: '{spec}' is a folder, not a spec file."),
            (["inspect", spec], $"ddpm: '{spec}' is a folder, not a spec file."),
            (["import", weights, "--model", spec, "--out", Path.Combine(root, "i.ckpt")], $"ddpm: '{weights}' is a folder, not a weights file."),
            (["import", Path.Combine(root, "w.safetensors"), "--model", spec, "--out", Path.Combine(root, "i.ckpt")], $"ddpm: Weights file '{Path.Combine(root, "w.safetensors")}' does not exist."),
            (["sample", checkpoint, "--out", Path.Combine(root, "s.png")], $"ddpm: '{checkpoint}' is a folder, not a checkpoint."),
            (["export", checkpoint, "--out", Path.Combine(root, "e.safetensors")], $"ddpm: '{checkpoint}' is a folder, not a checkpoint."),
            (["export", checkpoint, "--out", Path.Combine(root, "e.onnx")], $"ddpm: '{checkpoint}' is a folder, not a checkpoint."),
            (["sample", onnx, "--out", Path.Combine(root, "o.png")], $"ddpm: '{onnx}' is a folder, not an ONNX model."),
            (["eval", "--compare", json, other], $"ddpm: --compare: '{json}' is a folder, not a JSON file."),
            // eval reads a folder as images: an empty one says so before asking for --dataset or loading anything.
            (["eval", checkpoint], $"ddpm: {checkpoint}: no PNG or JPEG images in this folder."),
            (["train", Path.Combine(root, "none.yaml")], $"ddpm: Spec file '{Path.Combine(root, "none.yaml")}' does not exist."),
        };
        foreach (var (args, expected) in cases)
        {
            var (code, output, error) = Ddpm(args);
            Assert.True((2, "", expected) == (code, output, error.TrimEnd()), $"ddpm {string.Join(' ', args)}: exit {code}, {output}{error}");
        }
        Assert.Equal(new[] { "a.json", "b.json", "x.ckpt", "x.onnx", "x.safetensors", "x.yaml" },
                     Directory.EnumerateFileSystemEntries(root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
