using Ddpm.Training;
using SkiaSharp;

namespace Ddpm.Cli.Tests;

/// <summary>A class-conditional model end to end: train on labelled data, sample by class name, one row per class, refusals.</summary>
[Collection("cli")]
public sealed class ConditionalCliTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-conditional-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    private string Train()
    {
        string run = Path.Combine(root, "run");
        var (code, output, error) = Ddpm("train", "TinyConditionalUNet", "--out", run, "--steps", "6", "--sample-every", "0", "--final-samples", "6");
        Assert.True(code == 0, output + error);
        return Path.Combine(run, "checkpoints", "last.ckpt");
    }

    [Fact]
    public void Trains_on_labelled_data_and_samples_by_class_name_index_all_and_none()
    {
        string checkpoint = Train();
        using (var saved = Checkpoint.Load(checkpoint))
            Assert.Equal(new[] { "vertical bar", "horizontal bar", "box" }, saved.ClassNames);
        // The final grid of a conditional run has one row per class: 6 images -> 3 rows of 2.
        string grid = Path.Combine(root, "run", "samples", "step-000006.png");
        using (var bitmap = SKBitmap.Decode(grid))
            Assert.Equal((2 * 20 + 4, 3 * 20 + 4), (bitmap.Width, bitmap.Height)); // tiles of 8 px and 2 px padding, both doubled

        string png = Path.Combine(root, "box.png");
        var (code, output, error) = Ddpm("sample", checkpoint, "--class", "box", "--count", "4", "--sampler", "ddim", "--steps", "3", "--out", png);
        Assert.True(code == 0, output + error);
        Assert.Contains("4 images of TinyConditionalUNet, class box, guidance 2 at step 6", output);

        (code, output, error) = Ddpm("sample", checkpoint, "--class", "1", "--guidance", "4.5", "--count", "2", "--sampler", "dpmpp-2m", "--steps", "3", "--out", png);
        Assert.True(code == 0, output + error);
        Assert.Contains("class horizontal bar, guidance 4.5", output);

        (code, output, error) = Ddpm("sample", checkpoint, "--class", "all", "--count", "4", "--sampler", "ddim", "--steps", "2", "--out", png);
        Assert.True(code == 0, output + error);
        Assert.Contains("6 images of TinyConditionalUNet, 3 classes, guidance 2; rows: vertical bar, horizontal bar, box", output); // 4 rounds up to 2 per class
        using (var bitmap = SKBitmap.Decode(png))
            Assert.Equal((2 * 20 + 4, 3 * 20 + 4), (bitmap.Width, bitmap.Height)); // tiles of 8 px and 2 px padding, both doubled

        (code, output, error) = Ddpm("sample", checkpoint, "--class", "none", "--count", "2", "--sampler", "ddim", "--steps", "2", "--out", png);
        Assert.True(code == 0, output + error);
        Assert.Contains("the null class (unconditional)", output);
    }

    [Fact]
    public void Refuses_to_sample_without_a_class_or_with_an_unknown_one()
    {
        string checkpoint = Train();
        string png = Path.Combine(root, "x.png");
        var (code, _, error) = Ddpm("sample", checkpoint, "--count", "2", "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("TinyConditionalUNet is class-conditional: pass --class with a class name or index (0 vertical bar, 1 horizontal bar, 2 box), " +
                        "--class all for every class, or --class none for the unconditional model.", error);
        Assert.False(File.Exists(png));

        (code, _, error) = Ddpm("sample", checkpoint, "--class", "circle", "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("--class circle: TinyConditionalUNet has no class 'circle'; its classes are 0 vertical bar, 1 horizontal bar, 2 box", error);

        (code, _, error) = Ddpm("sample", checkpoint, "--class", "3", "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("Class 3 is out of range: TinyConditionalUNet has classes 0 to 2", error);

        (code, _, error) = Ddpm("sample", checkpoint, "--class", "box", "--guidance", "-1", "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("--guidance", error);
        Assert.Contains("-1", error);
    }

    [Fact]
    public void A_conditional_run_resumes_exactly_label_dropout_included()
    {
        string straight = Path.Combine(root, "straight"), resumed = Path.Combine(root, "resumed");
        Assert.Equal(0, Ddpm("train", "TinyConditionalUNet", "--out", straight, "--steps", "12", "--sample-every", "0", "--final-samples", "0").Code);
        Assert.Equal(0, Ddpm("train", "TinyConditionalUNet", "--out", resumed, "--steps", "5", "--sample-every", "0", "--final-samples", "0").Code);
        var (code, output, error) = Ddpm("train", "TinyConditionalUNet", "--out", resumed, "--steps", "12", "--sample-every", "0", "--final-samples", "0", "--resume");
        Assert.True(code == 0, output + error);
        Assert.Contains("resumed from", output);
        Assert.Equal(File.ReadAllLines(Path.Combine(straight, "loss.csv")), File.ReadAllLines(Path.Combine(resumed, "loss.csv")));
    }

    [Fact]
    public void An_unconditional_model_takes_no_class()
    {
        string run = Path.Combine(root, "plain");
        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--sample-every", "0", "--final-samples", "0");
        Assert.True(code == 0, output + error);
        (code, _, error) = Ddpm("sample", Path.Combine(run, "checkpoints", "last.ckpt"), "--class", "box", "--out", Path.Combine(root, "p.png"));
        Assert.Equal(2, code);
        Assert.Contains("TinyUNet is not class-conditional: --class and --guidance do not apply to it.", error);
    }

    [Fact]
    public void An_onnx_export_samples_by_class_like_its_checkpoint()
    {
        string checkpoint = Train();
        string onnx = Path.Combine(root, "conditional.onnx");
        var (code, output, error) = Ddpm("export", checkpoint, "--out", onnx);
        Assert.True(code == 0, output + error);

        string png = Path.Combine(root, "onnx-all.png");
        (code, output, error) = Ddpm("sample", onnx, "--class", "all", "--count", "4", "--sampler", "ddim", "--steps", "2", "--out", png);
        Assert.True(code == 0, output + error);
        Assert.Contains("6 images of TinyConditionalUNet, 3 classes, guidance 2; rows: vertical bar, horizontal bar, box", output);
        Assert.Contains("ONNX Runtime", output);
        using (var bitmap = SKBitmap.Decode(png))
            Assert.Equal((2 * 20 + 4, 3 * 20 + 4), (bitmap.Width, bitmap.Height)); // one row per class, as from the checkpoint

        (code, output, error) = Ddpm("sample", onnx, "--class", "hor", "--guidance", "4.5", "--count", "2", "--sampler", "dpmpp-2m", "--steps", "3", "--out", png);
        Assert.True(code == 0, output + error);
        Assert.Contains("2 images of TinyConditionalUNet, class horizontal bar, guidance 4.5", output);

        // The same refusals as for the checkpoint.
        File.Delete(png);
        (code, _, error) = Ddpm("sample", onnx, "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("TinyConditionalUNet is class-conditional: pass --class with a class name or index (0 vertical bar, 1 horizontal bar, 2 box)", error);
        (code, _, error) = Ddpm("sample", onnx, "--class", "circle", "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("--class circle: TinyConditionalUNet has no class 'circle'", error);
        Assert.False(File.Exists(png));
    }
}
