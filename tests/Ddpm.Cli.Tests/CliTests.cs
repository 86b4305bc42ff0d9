using System.Globalization;
using SkiaSharp;

namespace Ddpm.Cli.Tests;

/// <summary>The `ddpm` command end to end, in process, on the tiny model and synthetic data.</summary>
[Collection("cli")] // training runs change torch's thread count; keep them apart
public sealed class CliTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-cli-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    [Fact]
    public void Help_lists_every_command_and_exits_0()
    {
        var (code, output, _) = Ddpm("--help");
        Assert.Equal(0, code);
        foreach (string command in new[] { "train", "sample", "inspect", "data", "bench" })
            Assert.Contains(command, output);
        var (trainCode, trainHelp, _) = Ddpm("train", "--help");
        Assert.Equal(0, trainCode);
        Assert.Contains("--resume", trainHelp);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("train")]
    [InlineData("train", "TinyUNet", "--steps", "0")]
    [InlineData("train", "TinyUNet", "--steps", "5", "--epochs", "1")]
    [InlineData("train", "TinyUNet", "--device", "tpu")]
    [InlineData("sample", "x.ckpt", "--sampler", "euler")]
    [InlineData("sample", "x.ckpt", "--count", "0")]
    [InlineData("train", "NoSuchModel")]
    [InlineData("data", "imagenet")]
    public void Bad_usage_exits_2_with_one_clear_message(params string[] args)
    {
        var (code, _, error) = Ddpm(args);
        Assert.Equal(2, code);
        Assert.StartsWith("ddpm: ", error);
        Assert.DoesNotContain("   at ", error); // no stack trace
    }

    [Fact]
    public void Train_writes_the_run_folder_and_sample_turns_the_checkpoint_into_images()
    {
        string run = Path.Combine(root, "run");
        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "30");
        Assert.True(code == 0, error + output);
        foreach (string file in new[] { "config.yaml", "checkpoints/last.ckpt", "samples/step-000030.png", "loss.csv", "loss.png", "log.txt" })
            Assert.True(File.Exists(Path.Combine(run, file)), $"missing {file}");
        Assert.Contains("model: TinyUNet", File.ReadAllText(Path.Combine(run, "config.yaml")));
        Assert.Equal(31, File.ReadAllLines(Path.Combine(run, "loss.csv")).Length); // header + 30 steps
        Assert.Contains("done: 30 steps", output);
        using (var grid = SKBitmap.Decode(Path.Combine(run, "samples/step-000030.png")))
            Assert.True(grid.Width >= 8 * 8 * 2 && grid.Height >= 8 * 8 * 2, $"grid is {grid.Width}x{grid.Height}");
        using (var loss = SKBitmap.Decode(Path.Combine(run, "loss.png")))
            Assert.Equal((800, 500), (loss.Width, loss.Height));

        string png = Path.Combine(root, "out.png");
        var (sampleCode, sampleOut, sampleErr) = Ddpm("sample", Path.Combine(run, "checkpoints/last.ckpt"), "--count", "4",
                                                      "--sampler", "ddim", "--steps", "5", "--out", png, "--frames", "--seed", "1");
        Assert.True(sampleCode == 0, sampleErr);
        Assert.Contains("4 images of TinyUNet at step 30", sampleOut);
        using (var image = SKBitmap.Decode(png))
            Assert.Equal(2 * (2 * 8 + 3 * 2) - 2 * 2 + 2 * 2, image.Width); // 2 columns of 8px, padding 2, upscaled x2
        Assert.StartsWith("GIF89a", File.ReadAllText(Path.ChangeExtension(png, ".gif"))[..6]);
        using (var gif = SKCodec.Create(Path.ChangeExtension(png, ".gif")))
            Assert.Equal((2 * (2 * 8 + 3 * 2), 5), (gif.Info.Width, gif.FrameCount)); // the x after each of the 5 DDIM steps

        var (inspectCode, inspectOut, _) = Ddpm("inspect", "TinyUNet", "--plot", Path.Combine(root, "schedule.png"));
        Assert.Equal(0, inspectCode);
        Assert.Contains("init_conv.weight [8, 1, 1, 1]", inspectOut);
        Assert.Contains(TinyUNet.ParameterCount.ToString("N0", CultureInfo.CurrentCulture), inspectOut);
        Assert.Contains("down 1: 4x4, 8 -> 16", inspectOut);
        using (var schedule = SKBitmap.Decode(Path.Combine(root, "schedule.png")))
            Assert.Equal((800, 500), (schedule.Width, schedule.Height));
    }

    [Fact]
    public void Resume_reproduces_the_loss_curve_of_an_uninterrupted_run()
    {
        string straight = Path.Combine(root, "straight"), resumed = Path.Combine(root, "resumed");
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", straight, "--steps", "20", "--sample-every", "0").Code);
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", resumed, "--steps", "10", "--sample-every", "0").Code);
        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", resumed, "--steps", "20", "--sample-every", "0", "--resume");
        Assert.True(code == 0, error);
        Assert.Contains("resumed from", output);
        Assert.Equal(File.ReadAllLines(Path.Combine(straight, "loss.csv")), File.ReadAllLines(Path.Combine(resumed, "loss.csv")));
    }

    [Fact]
    public void Bench_prints_its_table_and_writes_json()
    {
        string json = Path.Combine(root, "bench.json");
        var (code, output, error) = Ddpm("bench", "TinyUNet", "--batch-size", "8", "--sample-batch", "4", "--steps", "3", "--json", json);
        Assert.True(code == 0, error);
        Assert.Contains("train step, batch 8", output);
        Assert.Contains("sampling step, batch 4", output);
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        Assert.Matches(@"^\d+ ms median of 3", document.RootElement.GetProperty("train step, batch 8").GetString());
        Assert.Contains("MiB", document.RootElement.GetProperty("peak RSS").GetString());
    }

    [Fact]
    public void A_corrupt_checkpoint_fails_with_one_line_naming_the_file()
    {
        string bad = Path.Combine(root, "bad.ckpt");
        File.WriteAllBytes(bad, new byte[] { 1, 2, 3, 4, 5 });
        var (code, _, error) = Ddpm("sample", bad);
        Assert.Equal(1, code);
        Assert.Contains("bad.ckpt", error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void Resume_without_a_checkpoint_is_bad_usage()
    {
        var (code, _, error) = Ddpm("train", "TinyUNet", "--out", Path.Combine(root, "empty"), "--resume");
        Assert.Equal(2, code);
        Assert.Contains("no checkpoint", error);
    }
}
