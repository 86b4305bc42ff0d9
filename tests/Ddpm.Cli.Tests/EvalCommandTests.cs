using System.Text.Json;
using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Imaging;
using static TorchSharp.torch;

namespace Ddpm.Cli.Tests;

/// <summary>
/// `ddpm eval` end to end on a labelled 8x8 IDX fixture (four shapes): the same images scored from a .npy of levels, a .npy
/// of floats, a PNG grid and a folder of PNGs give the same FID to the last digit; images drawn from a checkpoint score the
/// same as their saved .npy; noise scores far worse than real images; bad inputs are one line with exit code 2.
/// </summary>
[Collection("cli")]
public sealed class EvalCommandTests : IDisposable
{
    private const int Size = 8;
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-eval-").FullName;
    private readonly string dataset;

    public EvalCommandTests()
    {
        string folder = Path.Combine(root, "shapes");
        Directory.CreateDirectory(folder);
        var (train, trainLabels) = Shapes(400, seed: 1);
        var (test, testLabels) = Shapes(200, seed: 2);
        Idx.WriteImages(Path.Combine(folder, FashionMnist.TrainImagesFile), train);
        Idx.WriteLabels(Path.Combine(folder, FashionMnist.TrainLabelsFile), trainLabels);
        Idx.WriteImages(Path.Combine(folder, FashionMnist.TestImagesFile), test);
        Idx.WriteLabels(Path.Combine(folder, FashionMnist.TestLabelsFile), testLabels);
        File.WriteAllLines(Path.Combine(folder, "classes.txt"), ["vertical", "horizontal", "box", "diagonal"]);
        dataset = "idx:" + folder;
    }

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    /// <summary>Bars, boxes and diagonals at random places and brightness over faint noise; labels 0-3.</summary>
    private static (ImageSet Images, byte[] Labels) Shapes(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * Size * Size];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int kind = i % 4, a = random.Next(1, Size - 3);
            byte level = (byte)random.Next(150, 256);
            labels[i] = (byte)kind;
            for (int y = 0; y < Size; y++)
                for (int x = 0; x < Size; x++)
                {
                    bool on = kind switch
                    {
                        0 => x == a || x == a + 1,
                        1 => y == a || y == a + 1,
                        2 => (x == a || x == a + 2 || y == a || y == a + 2) && x >= a && x <= a + 2 && y >= a && y <= a + 2,
                        _ => x == y,
                    };
                    pixels[(i * Size + y) * Size + x] = on ? level : (byte)random.Next(0, 30);
                }
        }
        return (new ImageSet(pixels, count, 1, Size, Size), labels);
    }

    private static double Fid(string json)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        return document.RootElement.GetProperty("samples").GetProperty("fid").GetDouble();
    }

    private static Tensor AsSigned(ImageSet images) =>
        tensor(images.Pixels.Select(b => b / 127.5f - 1f).ToArray(), new long[] { images.Count, 1, Size, Size });

    [Fact]
    public void The_same_images_score_the_same_from_npy_png_grid_and_folder_and_real_images_beat_noise()
    {
        var (real, _) = Shapes(120, seed: 3);
        string npy = Path.Combine(root, "real.npy");
        Npy.Write(npy, [real.Count, Size, Size], real.Pixels);

        string floats = Path.Combine(root, "real-float.npy");
        Npy.Write(floats, [real.Count, 1, Size, Size], real.Pixels.Select(b => b / 127.5f - 1f).ToArray());

        string grid = Path.Combine(root, "real.png");
        using (var signed = AsSigned(real))
            ImageGrid.SavePng(signed, grid, columns: 16, padding: 2, scale: 2); // 120 = 7 full rows of 16 and 8 in the last

        string folder = Path.Combine(root, "real-folder");
        Directory.CreateDirectory(folder);
        using (var signed = AsSigned(real))
            for (int i = 0; i < real.Count; i++)
                ImageGrid.SavePng(signed[i], Path.Combine(folder, $"{i:D3}.png"), columns: 1, padding: 0);

        var fids = new List<double>();
        foreach (var (input, name) in new[] { (npy, "npy"), (floats, "float"), (grid, "grid"), (folder, "folder") })
        {
            string json = Path.Combine(root, $"{name}.json");
            var (code, output, error) = Ddpm("eval", input, "--dataset", dataset, "--json", json);
            Assert.True(code == 0, error);
            Assert.Contains("FID (lower is better)", output);
            using var document = JsonDocument.Parse(File.ReadAllText(json));
            Assert.Equal(120, document.RootElement.GetProperty("context").GetProperty("images").GetInt32());
            Assert.Equal(120, document.RootElement.GetProperty("samples").GetProperty("n").GetInt32());
            Assert.Equal(200, document.RootElement.GetProperty("reference").GetProperty("count").GetInt32());
            fids.Add(Fid(json));
        }
        Assert.All(fids, f => Assert.Equal(fids[0], f));

        var random = new Random(4);
        var noise = new byte[120 * Size * Size];
        random.NextBytes(noise);
        string noiseNpy = Path.Combine(root, "noise.npy");
        Npy.Write(noiseNpy, [120, 1, Size, Size], noise);
        string noiseJson = Path.Combine(root, "noise.json");
        Assert.Equal(0, Ddpm("eval", noiseNpy, "--dataset", dataset, "--json", noiseJson).Code);
        Assert.True(Fid(noiseJson) > 5 * fids[0], $"noise FID {Fid(noiseJson)} vs real {fids[0]}");
    }

    [Fact]
    public void A_conditional_checkpoint_is_scored_on_a_balanced_draw_with_the_share_drawn_as_asked()
    {
        // TinyConditionalUNet's classes (vertical bar, horizontal bar, box) are the fixture's first three.
        string run = Path.Combine(root, "conditional");
        var (trainCode, _, trainError) = Ddpm("train", "TinyConditionalUNet", "--out", run, "--steps", "2", "--sample-every", "0", "--final-samples", "0");
        Assert.True(trainCode == 0, trainError);
        string json = Path.Combine(root, "conditional.json");
        var (code, output, error) = Ddpm("eval", Path.Combine(run, "checkpoints", "last.ckpt"), "--dataset", dataset, "--samples", "9",
                                         "--sampler", "ddim", "--steps", "2", "--class", "all", "--guidance", "3", "--json", json);
        Assert.True(code == 0, error);
        Assert.Contains("  by class: 3 classes, guidance 3" + Environment.NewLine, output); // a balanced draw has no grid rows to name
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(3, document.RootElement.GetProperty("context").GetProperty("guidance").GetDouble());
        var requested = document.RootElement.GetProperty("samples").GetProperty("requested_classes");
        var classes = requested.GetProperty("classes").EnumerateArray().ToList();
        Assert.Equal(new[] { "vertical", "horizontal", "box" }, classes.Select(c => c.GetProperty("name").GetString()));
        Assert.All(classes, c => Assert.Equal(3, c.GetProperty("requested").GetInt32())); // 0, 1, 2, 0, 1, 2, ...
        int correct = classes.Sum(c => c.GetProperty("correct").GetInt32());
        Assert.Equal(correct / 9.0, requested.GetProperty("correct_share").GetDouble(), 1e-12);
    }

    [Fact]
    public void A_checkpoint_is_sampled_and_scores_the_same_as_its_saved_samples()
    {
        string run = Path.Combine(root, "run");
        var (trainCode, _, trainError) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--sample-every", "0");
        Assert.True(trainCode == 0, trainError);
        string json = Path.Combine(root, "ckpt.json"), saved = Path.Combine(root, "drawn.npy");
        var (code, output, error) = Ddpm("eval", Path.Combine(run, "checkpoints", "last.ckpt"), "--dataset", dataset, "--samples", "20",
                                         "--sampler", "ddim", "--steps", "3", "--seed", "5", "--json", json, "--save-samples", saved);
        Assert.True(code == 0, error);
        Assert.Contains("drawing 20 images of TinyUNet at step 2 (DDIM, 3 steps, eta 0", output);
        using (var document = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var context = document.RootElement.GetProperty("context");
            Assert.Equal("TinyUNet", context.GetProperty("model").GetString());
            Assert.Equal(2, context.GetProperty("step").GetInt64());
            Assert.Equal("ddim", context.GetProperty("sampler").GetString());
            Assert.Equal(3, context.GetProperty("model_calls").GetInt32());
            Assert.Equal(20, document.RootElement.GetProperty("samples").GetProperty("n").GetInt32());
        }
        var array = Npy.Read(saved);
        Assert.Equal(new long[] { 20, 1, Size, Size }, array.Shape);
        Assert.Equal("u1", array.DType);

        // The saved levels are what was scored: a sample is scored as the PNG it would be saved as.
        string again = Path.Combine(root, "again.json");
        Assert.Equal(0, Ddpm("eval", saved, "--dataset", dataset, "--seed", "5", "--json", again).Code);
        Assert.Equal(Fid(json), Fid(again));
    }

    [Fact]
    public void A_checkpoint_draws_the_same_images_on_ONNX_Runtime_as_on_TorchSharp()
    {
        string? savedCache = Environment.GetEnvironmentVariable(global::Ddpm.Native.KernelCache.EnvironmentVariable);
        Environment.SetEnvironmentVariable(global::Ddpm.Native.KernelCache.EnvironmentVariable, Path.Combine(root, "cache"));
        try
        {
            string run = Path.Combine(root, "run");
            var (trainCode, _, trainError) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--sample-every", "0");
            Assert.True(trainCode == 0, trainError);
            var levels = new Dictionary<string, byte[]>();
            foreach (string engine in new[] { "torch", "onnx" })
            {
                string json = Path.Combine(root, $"{engine}.json"), npy = Path.Combine(root, $"{engine}.npy");
                var (code, output, error) = Ddpm("eval", Path.Combine(run, "checkpoints", "last.ckpt"), "--dataset", dataset, "--samples", "12",
                                                 "--sampler", "dpmpp-2m-sde", "--steps", "4", "--seed", "2", "--engine", engine, "--json", json, "--save-samples", npy);
                Assert.True(code == 0, error + output);
                Assert.Contains(engine == "onnx" ? "on ONNX Runtime (--engine onnx)" : "on TorchSharp (--engine torch)", output);
                using (var document = JsonDocument.Parse(File.ReadAllText(json)))
                    Assert.Equal(engine, document.RootElement.GetProperty("context").GetProperty("engine").GetString());
                levels[engine] = Npy.Read(npy).Values.Select(v => (byte)v).ToArray();
            }
            var pairs = levels["torch"].Zip(levels["onnx"]).ToList();
            Assert.Equal(12 * Size * Size, pairs.Count);
            Assert.True(pairs.Max(p => Math.Abs(p.First - p.Second)) <= 1, "images differ by more than one level of 255");
            Assert.True(pairs.Count(p => p.First != p.Second) <= pairs.Count / 100, "more than 1% of the levels differ");
        }
        finally
        {
            Environment.SetEnvironmentVariable(global::Ddpm.Native.KernelCache.EnvironmentVariable, savedCache);
        }
    }

    [Fact]
    public void Bad_inputs_are_one_line_with_exit_code_2()
    {
        string npy = Path.Combine(root, "wrong.npy");
        Npy.Write(npy, [10, 5, 5], new byte[250]);
        (string[] Args, string Message)[] cases =
        [
            ([npy], $"ddpm: {npy} holds images: say which data set they imitate with --dataset (for example --dataset fashion-mnist)."),
            ([npy, "--dataset", dataset], $"ddpm: {npy}: an array of shape (10, 5, 5) is not images of this data set ([N, 8, 8], [N, 1, 8, 8] or [N, 8, 8, 1])."),
            ([Path.Combine(root, "none.npy"), "--dataset", dataset], $"ddpm: '{Path.Combine(root, "none.npy")}' does not exist."),
            ([npy, "--dataset", "synthetic"], $"ddpm: --dataset: Dataset 'synthetic' has no class labels, and evaluation needs a labelled data set ({LabelledDatasets.Help})."),
            ([npy, "--dataset", dataset, "--samples", "abc"], "ddpm: --samples must be a whole number >= 2 (at most 2147483647), got 'abc'."),
            ([npy, "--dataset", dataset, "--eta", "NaN"], "ddpm: --eta must be a finite number from 0 to 1, got 'NaN'."),
        ];
        foreach (var (args, message) in cases)
        {
            var (code, output, error) = Ddpm(["eval", .. args]);
            Assert.Equal(2, code);
            Assert.Equal(message, error.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim());
            Assert.DoesNotContain("   at ", error);
        }
    }
}
