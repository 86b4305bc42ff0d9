using System.Globalization;
using Ddpm.Training;
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
        foreach (string command in new[] { "train", "sample", "eval", "inspect", "list", "data", "bench" })
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
        // The grids of a run are drawn with the project's default sampler: SDE-DPM-Solver++(2M), 20 model calls.
        Assert.Contains(Path.Combine("samples", "step-000030.png") + " (SDE-DPM-Solver++(2M), 20 steps, ", output);
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

        // Without --sampler, ddpm sample draws with SDE-DPM-Solver++(2M) at 20 model calls; --sampler ddpm is the tutorial's chain
        // of all T steps (TinySchedule: 20), and --steps defaults to 20 for the other samplers too.
        foreach (var (args, how) in new (string[], string)[]
                 {
                     ([], "SDE-DPM-Solver++(2M), 20 steps"),
                     (["--sampler", "ddpm"], "DDPM, 20 steps"),
                     (["--sampler", "dpmpp-2m"], "DPM-Solver++(2M), 20 steps"),
                     (["--sampler", "dpmpp-2m-sde", "--steps", "7"], "SDE-DPM-Solver++(2M), 7 steps"),
                 })
        {
            // --engine torch: the message checked is TorchSharp's; auto would follow a timing cached in ~/.cache/ddpm by any earlier run.
            var (code2, out2, err2) = Ddpm(["sample", Path.Combine(run, "checkpoints/last.ckpt"), "--count", "2", "--out", Path.Combine(root, "default.png"), "--engine", "torch", .. args]);
            Assert.True(code2 == 0, err2);
            Assert.True(out2.Contains($"2 images of TinyUNet at step 30 ({how}, x0 limit none, ", StringComparison.Ordinal), out2);
        }
        var (helpCode, sampleHelp, _) = Ddpm("sample", "--help");
        Assert.Equal(0, helpCode);
        Assert.Contains("dpmpp-2m-sde (the default: SDE-DPM-Solver++(2M)", sampleHelp);
        Assert.DoesNotContain("[default: DpmSolver2MSde]", sampleHelp); // the enum's internal name is not a value the option takes

        var (inspectCode, inspectOut, _) = Ddpm("inspect", "TinyUNet", "--plot", Path.Combine(root, "schedule.png"));
        Assert.Equal(0, inspectCode);
        Assert.Contains("init_conv.weight [8, 1, 1, 1]", inspectOut);
        Assert.Contains(TinyUNet.ParameterCount.ToString("N0", CultureInfo.CurrentCulture), inspectOut);
        Assert.Contains("down 1: 4x4, 8 -> 16", inspectOut);
        using (var schedule = SKBitmap.Decode(Path.Combine(root, "schedule.png")))
            Assert.Equal((800, 500), (schedule.Width, schedule.Height));
    }

    [Fact]
    public void Inspect_reads_a_spec_of_another_project_without_its_compiled_model()
    {
        string spec = Path.Combine(root, "theirs.yaml");
        File.WriteAllText(spec, "model:\n  name: TheirUNet\n  namespace: Theirs\n  channels: 3\n  image_size: 16\n  dim: 8\n  dim_mults: [1, 2]\n" +
                                "  stages:\n    - { attention: none }\n    - { attention: linear, blocks: 1 }\n  mid: { attention: full }\n" +
                                "schedule:\n  kind: linear\n  timesteps: 10\n  objective: x0\n");
        var (code, output, error) = Ddpm("inspect", spec);
        Assert.True(code == 0, error);
        Assert.StartsWith("TheirUNet (spec theirs.yaml, not compiled into this ddpm): declared in Theirs;", output);
        Assert.Contains("input: [B, 3, 16, 16] images and [B] timesteps -> the predicted clean image x_0 of the same shape", output);
        Assert.Contains("  stage 1: 1 ResNet blocks, linear attention\n", output.ReplaceLineEndings("\n"));
        // The schedule's tables are computed, not compiled: the linear schedule's first beta is beta_start.
        var tables = global::Ddpm.Schedules.ScheduleMath.Tables(ScheduleKind.Linear, 10);
        Assert.Contains($"schedule: T = 10, fingerprint {tables.Fingerprint}", output);
        Assert.Matches(@"\n  0 +0\.0001 ", output.ReplaceLineEndings("\n"));

        // A broken spec of another project is reported at its line, as before.
        File.WriteAllText(spec, "model:\n  name: TheirUNet\n  dim_mults: [1, 0]\n");
        var (badCode, _, badError) = Ddpm("inspect", spec);
        Assert.Equal(2, badCode);
        Assert.Contains("theirs.yaml", badError);
    }

    [Fact]
    public void List_shows_the_model_library_with_each_model_once_and_where_it_is_declared()
    {
        var (code, output, error) = Ddpm("list");
        Assert.True(code == 0, error);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Matches(@"^MODEL +DECLARED IN +PARAMETERS +IMAGES +SCHEDULE$", lines[0]);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^FashionMnistUNet +spec fashion-mnist\.yaml +2,020,257 +1x28x28 +T = 300, predicts eps$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^TutorialUNet +attributes, Tutorial\.cs +2,020,257 +1x28x28 +T = 300, predicts eps$"));
        Assert.Contains(lines, l => l.StartsWith("Cifar10UNet ", StringComparison.Ordinal) && l.Contains("27,859,203") && l.Contains("3x32x32"));
        var names = lines.Skip(1).Select(l => l.Split(' ')[0]).ToList();
        Assert.Equal(names.Distinct().Count(), names.Count);
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        var (inspectCode, inspectOut, _) = Ddpm("inspect");
        Assert.Equal((0, output), (inspectCode, inspectOut));
    }

    [Fact]
    public void An_attributed_model_trains_with_the_default_settings_and_the_dataset_option()
    {
        string run = Path.Combine(root, "tutorial");
        var (code, output, error) = Ddpm("train", "TutorialUNet", "--dataset", "synthetic", "--steps", "1", "--batch-size", "2",
                                         "--final-samples", "0", "--out", run);
        Assert.True(code == 0, error + output);
        Assert.Contains("from 'synthetic'", output);
        Assert.Contains("done: 1 steps", output);
        string config = File.ReadAllText(Path.Combine(run, "config.yaml"));
        Assert.Equal(("TutorialUNet", "synthetic"), (RunConfig.Read(config).Model, RunConfig.Read(config).Dataset));
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "last.ckpt")));
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
    public void Bench_prints_its_table_and_writes_numbers_as_json_numbers()
    {
        string json = Path.Combine(root, "bench.json");
        var (code, output, error) = Ddpm("bench", "TinyUNet", "--batch-size", "8", "--sample-batch", "4", "--steps", "2", "--json", json);
        Assert.True(code == 0, error);
        Assert.Contains("train step, batch 8", output);
        Assert.Contains("sampling step, batch 4", output);
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var report = document.RootElement;
        Assert.Equal(BenchCommand.SchemaVersion, report.GetProperty("schema_version").GetInt32());
        // Measurements: JSON numbers (not strings), units in the names, plausible values.
        foreach (string key in new[] { "train_step_ms", "train_images_per_second", "sampling_step_ms", "ddpm_sampling_seconds_estimate",
                                       "rss_after_training_mib", "training_peak_rss_mib", "peak_rss_mib" })
        {
            var value = report.GetProperty(key);
            Assert.True(value.ValueKind == System.Text.Json.JsonValueKind.Number, $"{key} is {value.ValueKind}");
            Assert.True(value.GetDouble() > 0, $"{key} = {value.GetDouble()}");
        }
        double stepMs = report.GetProperty("train_step_ms").GetDouble();
        Assert.InRange(report.GetProperty("train_images_per_second").GetDouble(), 0.9 * 8000 / stepMs, 1.1 * 8000 / stepMs);
        Assert.InRange(report.GetProperty("peak_rss_mib").GetInt64(), 16, 1 << 20);
        Assert.True(report.GetProperty("peak_rss_mib").GetInt64() >= report.GetProperty("rss_after_training_mib").GetInt64());
        // The context the figures were measured in.
        Assert.Equal("TinyUNet", report.GetProperty("model").GetString());
        Assert.Equal(TinyUNet.ParameterCount, report.GetProperty("parameters").GetInt64());
        Assert.Equal("cpu", report.GetProperty("device").GetString());
        Assert.Equal("fp32", report.GetProperty("precision").GetString());
        Assert.Equal(8, report.GetProperty("train_batch_size").GetInt32());
        Assert.Equal(4, report.GetProperty("sample_batch_size").GetInt32());
        Assert.Equal(2, report.GetProperty("train_steps_measured").GetInt32());
        Assert.Equal(TorchSharp.torch.get_num_threads(), report.GetProperty("threads").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(report.GetProperty("cpu").GetProperty("name").GetString()));
        Assert.Equal(System.Text.Json.JsonValueKind.Array, report.GetProperty("cpu").GetProperty("features").ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(report.GetProperty("onednn").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(report.GetProperty("allocator").GetString()));
        // The kernels chosen for this model (the check of Native/ConvolutionBackends.cs) and the OpenMP settings.
        var kernels = report.GetProperty("kernels");
        Assert.StartsWith("convolutions: ", kernels.GetProperty("convolutions").GetString());
        Assert.Contains("convolutions", output.Split('\n').Single(line => line.StartsWith("convolutions ", StringComparison.Ordinal)));
        Assert.True(kernels.GetProperty("convolution_shapes").GetInt32() > 0);
        Assert.Equal(System.Text.Json.JsonValueKind.Array, kernels.GetProperty("onednn_failed_shapes").ValueKind);
        Assert.True(kernels.GetProperty("check_seconds").GetDouble() >= 0);
        Assert.Equal(TorchSharp.torch.get_num_threads(), report.GetProperty("threading").GetProperty("intra_op_threads").GetInt32());
        Assert.Contains("OMP_WAIT_POLICY", output);
    }

    [SkippableFact]
    public void Cuda_on_a_cpu_build_fails_with_one_line_that_says_how_to_get_a_cuda_build()
    {
        Skip.If(TorchSharp.torch.cuda.is_available(), "this build has CUDA: the message for a CPU-only build cannot be seen here");
        string[][] commands =
        [
            ["train", "TinyUNet", "--device", "cuda", "--out", Path.Combine(root, "cuda")],
            ["bench", "TinyUNet", "--device", "cuda"],
            ["sample", Path.Combine(root, "none.ckpt"), "--device", "cuda", "--out", Path.Combine(root, "s.png")],
        ];
        foreach (var args in commands)
        {
            var (code, _, error) = Ddpm(args);
            Assert.Equal(2, code);
            Assert.Single(error.Trim().Split('\n'));
            Assert.Contains("CPU-only libtorch", error);
            Assert.Contains("dotnet build -p:DdpmTorchPackage=TorchSharp-cuda-linux -p:DdpmTorchVersion=0.107.0", error);
        }
        Assert.False(Directory.Exists(Path.Combine(root, "cuda")), "a refused run must not make its folder");
    }

    [Fact]
    public void The_cuda_message_tells_a_cpu_build_from_a_cuda_build_without_a_gpu()
    {
        Assert.False(Options.HasCudaLibTorch(AppContext.BaseDirectory));
        string native = Path.Combine(root, "runtimes", "linux-x64", "native");
        Directory.CreateDirectory(native);
        File.WriteAllText(Path.Combine(native, "libtorch_cuda.so"), "");
        Assert.True(Options.HasCudaLibTorch(root));
        Assert.Contains("CPU-only libtorch", Options.CudaUnavailable(cudaLibTorch: false));
        Assert.Contains("NVIDIA driver", Options.CudaUnavailable(cudaLibTorch: true));
    }

    [Fact]
    public void Fp16_on_the_cpu_is_refused_with_one_line()
    {
        var (code, _, error) = Ddpm("train", "TinyUNet", "--device", "cpu", "--precision", "fp16", "--out", Path.Combine(root, "fp16"));
        Assert.Equal(2, code);
        Assert.Equal("ddpm: --precision fp16 needs --device cuda (float16 with loss scaling is for GPUs); on the CPU use bf16 or fp32.", error.Trim());
        Assert.False(Directory.Exists(Path.Combine(root, "fp16")));
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
