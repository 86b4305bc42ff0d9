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
    internal static (ImageSet Images, byte[] Labels) Shapes(int count, int seed)
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

    /// <summary>Scores <paramref name="count"/> fixture images (or noise) from a .npy with --json; returns the JSON's path.</summary>
    private string Score(string name, bool noise, int count = 60)
    {
        byte[] pixels;
        if (noise)
        {
            pixels = new byte[count * Size * Size];
            new Random(9).NextBytes(pixels);
        }
        else pixels = Shapes(count, seed: 3).Images.Pixels;
        string npy = Path.Combine(root, name + ".npy"), json = Path.Combine(root, name + ".json");
        Npy.Write(npy, [count, 1, Size, Size], pixels);
        var (code, _, error) = Ddpm("eval", npy, "--dataset", dataset, "--json", json);
        Assert.True(code == 0, error);
        return json;
    }

    private static string WeightsSha256(string json)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        return document.RootElement.GetProperty("feature_net").GetProperty("weights_sha256").GetString()!;
    }

    /// <summary>A copy of <paramref name="json"/> whose feature_net.weights_sha256 is <paramref name="sha256"/> (null: removed).</summary>
    private string WithNet(string json, string name, string? sha256)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(json))!;
        var net = node["feature_net"]!.AsObject();
        if (sha256 is null) net.Remove("weights_sha256");
        else net["weights_sha256"] = sha256;
        string path = Path.Combine(root, name);
        File.WriteAllText(path, node.ToJsonString());
        return path;
    }

    [Fact]
    public void Compare_prints_two_results_of_one_net_side_by_side_and_refuses_results_of_different_nets()
    {
        string real = Score("real", noise: false), noise = Score("noise", noise: true, count: 40);
        string sha = WeightsSha256(real);
        Assert.Equal(sha, WeightsSha256(noise)); // the data set's one cached net

        var (code, output, error) = Ddpm("eval", "--compare", real, noise);
        Assert.True(code == 0, error);
        var lines = output.ReplaceLineEndings("\n").Split('\n');
        Assert.Equal($"Two eval results against {dataset}, scored with the same feature net (weights sha256 {sha[..12]}, test accuracy " +
                     $"{JsonDocument.Parse(File.ReadAllText(real)).RootElement.GetProperty("feature_net").GetProperty("test_accuracy").GetDouble() * 100:F1}%)", lines[0]);
        Assert.Matches(@"^ +real\.json +noise\.json +second / first$", lines[1]);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^n +60 +40$"));
        string fidRow = lines.Single(l => l.StartsWith("FID (lower is better)"));
        string ratio = (Fid(noise) / Fid(real)).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + "x";
        Assert.Equal($"FID (lower is better) {Fid(real):F3} {Fid(noise):F3} {ratio}", string.Join(' ', fidRow.Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Contains(lines, l => l.StartsWith("KID (mean ± std)"));
        Assert.Contains(lines, l => l.StartsWith("  vertical "));
        Assert.Contains("n differs (60 and 40): FID is biased upwards at small n, so compare FID only at equal n; KID is unbiased.", output);

        // Another net: refused with one line and exit code 2, whichever way round.
        string other = WithNet(noise, "other-net.json", new string('a', 64));
        foreach (var (first, second) in new[] { (real, other), (other, real) })
        {
            (code, output, error) = Ddpm("eval", "--compare", first, second);
            Assert.Equal(2, code);
            Assert.Equal("", output);
            string shaFirst = WeightsSha256(first)[..12], shaSecond = WeightsSha256(second)[..12];
            Assert.Equal($"ddpm: refusing to compare: {first} and {second} were scored with different feature nets (weights sha256 {shaFirst} and " +
                         $"{shaSecond}), so their scores do not compare; score both with the same net.", Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim());
        }

        // A result that does not name its net cannot be compared either.
        string unnamed = WithNet(noise, "unnamed.json", null);
        (code, _, error) = Ddpm("eval", "--compare", real, unnamed);
        Assert.Equal(2, code);
        Assert.StartsWith($"ddpm: {unnamed} does not name its feature net (no feature_net.weights_sha256", error);
    }

    [Fact]
    public void Train_feature_net_writes_a_net_with_its_manifest_or_into_the_cache_that_eval_then_uses_without_training()
    {
        string net = Path.Combine(root, "nets", "shapes.fnet");
        var (code, output, error) = Ddpm("eval", "--train-feature-net", "--dataset", dataset, "--out", net);
        Assert.True(code == 0, error);
        Assert.Contains("feature net: training on 400 ", output);
        string manifestPath = Path.Combine(root, "nets", "shapes.json");
        using (var manifest = JsonDocument.Parse(File.ReadAllText(manifestPath)))
        {
            var m = manifest.RootElement;
            byte[] bytes = File.ReadAllBytes(net);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), m.GetProperty("sha256").GetString());
            Assert.Equal(bytes.LongLength, m.GetProperty("bytes").GetInt64());
            Assert.Equal((dataset, "shapes.fnet", 0L, 4), (m.GetProperty("dataset").GetString(), m.GetProperty("file").GetString(),
                                                          m.GetProperty("options").GetProperty("seed").GetInt64(), m.GetProperty("options").GetProperty("epochs").GetInt32()));
            Assert.Equal($"ddpm eval --train-feature-net --dataset {dataset} --out {net}", m.GetProperty("command").GetString());
            string weights = m.GetProperty("weights_sha256").GetString()!;
            Assert.Contains($"weights sha256 {weights}", output);
            Assert.Contains($"wrote {net} ({bytes.LongLength:N0} bytes, sha256 {m.GetProperty("sha256").GetString()}) and its manifest {manifestPath}", output);
            Assert.InRange(m.GetProperty("test_accuracy").GetDouble(), 0, 1);

            // Without --out the net goes to the data set's cache, where ddpm eval finds it and trains nothing.
            string cache = Path.Combine(dataset["idx:".Length..], "feature-net-v1.bin");
            Assert.False(File.Exists(cache));
            (code, output, error) = Ddpm("eval", "--train-feature-net", "--dataset", dataset);
            Assert.True(code == 0, error);
            Assert.Contains($"wrote {cache}", output);
            Assert.Contains($"weights sha256 {weights}", output); // the same data, options and seed give the same net
            string json = Score("after", noise: false);
            Assert.Equal(weights, WeightsSha256(json));
            var (_, evalOutput, _) = Ddpm("eval", Path.Combine(root, "after.npy"), "--dataset", dataset);
            Assert.Contains($"feature net: using {cache} (", evalOutput);
            Assert.DoesNotContain("training on", evalOutput);
            Assert.Contains($"feature net: {cache} (weights sha256 {weights[..12]})", evalOutput);
        }
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
            ([], "ddpm: ddpm eval needs a checkpoint or images to score (or --compare a.json b.json, or --train-feature-net --dataset NAME)."),
            (["--compare", npy], "ddpm: Required argument missing for option: '--compare'."),
            (["--compare", npy, npy, "--dataset", dataset], "ddpm: --dataset does not apply to --compare."),
            (["--compare", Path.Combine(root, "none.json"), npy], $"ddpm: --compare: '{Path.Combine(root, "none.json")}' does not exist."),
            (["--train-feature-net"], "ddpm: --train-feature-net: say which data set with --dataset (for example --dataset fashion-mnist)."),
            ([npy, "--train-feature-net", "--dataset", dataset], $"ddpm: --train-feature-net takes no input to score (got '{npy}')."),
            (["--train-feature-net", "--dataset", dataset, "--seed", "3"], "ddpm: --seed does not apply to --train-feature-net (it trains with fixed options: 4 epochs, batch 128, learning rate 0.002, seed 0)."),
            (["--train-feature-net", "--dataset", dataset, "--out", Path.Combine(root, "net.bin")], $"ddpm: --out {Path.Combine(root, "net.bin")}: a feature net file ends in .fnet (its manifest is written beside it as .json)."),
            ([npy, "--dataset", dataset, "--out", "x.fnet"], "ddpm: --out applies to --train-feature-net; scores go to --json."),
            ([npy], $"ddpm: {npy} holds images: say which data set they imitate with --dataset (for example --dataset fashion-mnist)."),
            ([npy, "--dataset", dataset], $"ddpm: {npy}: an array of shape (10, 5, 5) is not images of this data set ([N, 8, 8], [N, 1, 8, 8] or [N, 8, 8, 1])."),
            ([Path.Combine(root, "none.npy"), "--dataset", dataset], $"ddpm: '{Path.Combine(root, "none.npy")}' does not exist."),
            ([npy, "--dataset", "synthetic"], $"ddpm: --dataset: Dataset 'synthetic' has no class labels, and evaluation needs a labelled data set ({LabelledDatasets.Help})."),
            ([npy, "--dataset", dataset, "--samples", "abc"], "ddpm: --samples must be a whole number from 2 to 100000, got 'abc'."),
            ([npy, "--dataset", dataset, "--eta", "NaN"], "ddpm: --eta must be a finite number from 0 to 1, got 'NaN'."),
        ];
        string notJson = Path.Combine(root, "not.json");
        File.WriteAllText(notJson, "hello");
        var (notJsonCode, _, notJsonError) = Ddpm("eval", "--compare", notJson, notJson);
        Assert.Equal(2, notJsonCode);
        Assert.StartsWith($"ddpm: --compare: {notJson} is not JSON ('h' is an invalid start of a value.", notJsonError);
        foreach (var (args, message) in cases)
        {
            var (code, output, error) = Ddpm(["eval", .. args]);
            Assert.Equal(2, code);
            Assert.Equal(message, error.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim());
            Assert.DoesNotContain("   at ", error);
        }
    }
}
