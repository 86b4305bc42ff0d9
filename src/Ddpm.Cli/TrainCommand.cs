using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Imaging;
using Ddpm.Native;
using Ddpm.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>`ddpm train &lt;spec.yaml|model&gt;`: trains, samples, checkpoints and plots into a run folder.</summary>
internal static class TrainCommand
{
    public static Command Create(TextWriter output)
    {
        var target = new Argument<string>("spec") { Description = "A YAML spec (specs/fashion-mnist.yaml) or a compiled model name." };
        var outDir = new Option<string?>("--out") { Description = "Run folder (default: runs/<spec name>)." };
        var steps = new Option<int?>("--steps") { Description = "Train this many optimiser steps (overrides the spec's epochs)." };
        var epochs = new Option<int?>("--epochs") { Description = "Train this many epochs." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Images per step." };
        var device = Options.Device();
        var seed = new Option<long?>("--seed") { Description = "Seed for weights, data order and noise." };
        var resume = new Option<bool>("--resume") { Description = "Continue from the run folder's last checkpoint." };
        var sampleEvery = new Option<int?>("--sample-every") { Description = "Write a sample grid every N steps (0: only at the end)." };
        var precision = Options.Precision();
        var evalEvery = new Option<int?>("--eval-every") { Description = "Score sample quality every N steps and at the end (0: never; default: the spec's training.eval.every)." };
        var evalSamples = new Option<int?>("--eval-samples") { Description = "Images per evaluation (default: the spec's training.eval.samples, 256)." };
        var command = new Command("train", "Train a model and write checkpoints, sample grids and the loss curve to a run folder.")
        {
            target, outDir, steps, epochs, batchSize, device, seed, resume, sampleEvery, precision, evalEvery, evalSamples,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(steps) is not null && result.GetValue(epochs) is not null)
                result.AddError("Use --steps or --epochs, not both.");
            foreach (var option in new[] { steps, epochs, batchSize })
                if (result.GetValue(option) is int value && value < 1)
                    result.AddError($"{option.Name} must be >= 1, got {value}.");
            if (result.GetValue(evalEvery) is int every && every < 0)
                result.AddError($"--eval-every must be >= 0, got {every}.");
            if (result.GetValue(evalSamples) is int samples && samples < 2)
                result.AddError($"--eval-samples must be >= 2, got {samples}.");
        });
        command.SetAction(parse =>
        {
            var resolved = ModelResolver.Resolve(parse.GetValue(target)!);
            var training = resolved.Training;
            if (parse.GetValue(steps) is int s) { training.Steps = s; }
            if (parse.GetValue(epochs) is int e) { training.Epochs = e; training.Steps = null; }
            if (parse.GetValue(batchSize) is int b) training.BatchSize = b;
            if (parse.GetValue(seed) is long sd) training.Seed = sd;
            if (parse.GetValue(sampleEvery) is int se) training.SampleEvery = se;
            if (parse.GetValue(precision) is string p) training.Precision = p;
            if (parse.GetValue(evalEvery) is int ee) training.Eval.Every = ee;
            if (parse.GetValue(evalSamples) is int es) training.Eval.Samples = es;
            string folder = parse.GetValue(outDir) ?? Path.Combine("runs", resolved.SpecName);
            string deviceName = Options.ResolveDevice(parse.GetValue(device));
            return new TrainingRun(resolved, folder, deviceName, parse.GetValue(resume), output).Execute();
        });
        return command;
    }
}

/// <summary>One `ddpm train` run: its folder, files, progress display and trainer.</summary>
internal sealed class TrainingRun(ResolvedModel resolved, string folder, string device, bool resume, TextWriter output)
{
    private readonly List<(long Step, double Loss)> losses = new();
    private StreamWriter? log;
    private Action<TrainingProgress>? onProgress; // set while training, by the display in use
    private TrainingEvaluation? evaluation;

    private string CheckpointPath => Path.Combine(folder, "checkpoints", "last.ckpt");

    public int Execute()
    {
        var entry = resolved.Entry;
        var spec = resolved.Training;
        if (device != "cpu")
            throw new UsageException($"Training on '{device}' is not supported by this build (TorchSharp-cpu); use --device cpu. See README, 'GPU'.");
        Directory.CreateDirectory(Path.Combine(folder, "checkpoints"));
        Directory.CreateDirectory(Path.Combine(folder, "samples"));
        log = new StreamWriter(Path.Combine(folder, "log.txt"), append: resume) { AutoFlush = true };
        string config = RunConfig.Write(entry, spec, device, Allocator.Status);
        File.WriteAllText(Path.Combine(folder, "config.yaml"), config);
        Say($"ddpm train {entry.Name} ({entry.ParameterCount:N0} parameters, {entry.SpecFile}) -> {folder}");
        Say($"device {device}, {get_num_threads()} threads, allocator: {Allocator.Status}{(Denormals.AreFlushed() ? ", denormals flushed" : "")}, convolutions: {OneDnn.Status}");

        var watch = Stopwatch.StartNew();
        ImageSet data = Datasets.Load(spec.Dataset, entry.Channels, entry.ImageSize, Say);
        Say($"data: {data.Count:N0} images of {data.Channels}x{data.Height}x{data.Width} from '{spec.Dataset}' ({watch.Elapsed.TotalSeconds:F1} s)");

        using var evaluation = spec.Eval.Every > 0 ? new TrainingEvaluation(folder, entry, spec, Say, resume) : null;
        this.evaluation = evaluation;

        manual_seed(spec.Seed); // initial weights depend only on the seed
        using var model = entry.CreateModel();
        var diffusion = entry.Diffusion;
        var loader = Trainer.CreateLoader(data, spec);
        var shape = entry.BatchShape(64);
        using var trainer = new Trainer(model, diffusion, loader, spec, entry.CreateModel, new TrainingCallbacks
        {
            Progress = new SynchronousProgress(p => onProgress?.Invoke(p)),
            SampleDue = request =>
            {
                string path = Path.Combine(folder, "samples", $"step-{request.Step:D6}.png");
                var sampleWatch = Stopwatch.StartNew();
                Sampling.WriteGrid(request.Model, request.Diffusion, shape, SamplerKind.Ddpm, 0, 0, spec.Seed, path);
                Say($"step {request.Step}: wrote {path} ({sampleWatch.Elapsed.TotalSeconds:F0} s)");
            },
            CheckpointDue = request => request.Trainer.SaveCheckpoint(CheckpointPath),
            EvaluationDue = evaluation is null ? null : request => evaluation.Evaluate(request, CheckpointPath),
        }, config);

        if (resume)
        {
            if (!File.Exists(CheckpointPath))
                throw new UsageException($"--resume: no checkpoint at {CheckpointPath}.");
            using var checkpoint = Checkpoint.Load(CheckpointPath);
            set_num_threads(checkpoint.TorchThreads); // bit-exact continuation needs the same thread count
            trainer.Restore(checkpoint);
            Say($"resumed from {CheckpointPath} at step {trainer.Step}");
        }
        LoadLossHistory(trainer.Step);
        if (trainer.Step >= trainer.TotalSteps)
        {
            Say($"nothing to do: the run is at step {trainer.Step} of {trainer.TotalSteps}.");
            return DdpmCli.Ok;
        }

        Say($"training {trainer.TotalSteps - trainer.Step:N0} steps ({loader.BatchesPerEpoch} per epoch, batch {loader.BatchSize})");
        watch.Restart();
        try
        {
            RunWithProgress(trainer, loader);
        }
        catch (TrainingDivergedException e)
        {
            WriteLossFiles();
            throw new InvalidOperationException($"{e.Message} The last good checkpoint is kept at {CheckpointPath}.", e);
        }
        WriteLossFiles();
        var (_, peak) = Allocator.ResidentMemory();
        Say($"done: {trainer.Step} steps in {watch.Elapsed:hh\\:mm\\:ss}, final loss {losses[^1].Loss:F4}, peak RSS {peak / (1 << 20):N0} MiB");
        Say($"samples: {Path.Combine(folder, "samples")}; checkpoint: {CheckpointPath}; loss curve: {Path.Combine(folder, "loss.png")}");
        return DdpmCli.Ok;
    }

    private void RunWithProgress(Trainer trainer, BatchLoader loader)
    {
        var smoothed = new SmoothedLoss();
        long rss = 0;
        int batchesPerEpoch = loader.BatchesPerEpoch;
        var epochWatch = Stopwatch.StartNew();
        double epochLossSum = 0;
        int epochSteps = 0;
        var csv = new StreamWriter(Path.Combine(folder, "loss.csv"), append: true) { AutoFlush = true };
        if (new FileInfo(Path.Combine(folder, "loss.csv")).Length == 0) csv.WriteLine("step,loss,lr,grad_norm");

        void OnStep(TrainingProgress p, Action<string> status)
        {
            losses.Add((p.Step, p.Loss));
            csv.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.Step},{p.Loss:R},{p.LearningRate:R},{p.GradNorm:R}"));
            double smoothedLoss = smoothed.Add(p.Loss);
            epochLossSum += p.Loss;
            epochSteps++;
            double imagesPerSecond = epochSteps * loader.BatchSize / Math.Max(epochWatch.Elapsed.TotalSeconds, 1e-9);
            if (p.Step % 20 == 1 || rss == 0) rss = Allocator.ResidentMemory().Rss; // a /proc read, not on every step
            string quality = evaluation?.Latest is string latest ? $"  {latest}" : "";
            status($"epoch {p.Epoch + 1}  step {p.Step}/{p.TotalSteps}  loss {smoothedLoss:F4}{quality}  {imagesPerSecond:F0} img/s  RSS {rss >> 20} MiB");
            bool epochEnd = p.Step % batchesPerEpoch == 0 || p.Step == p.TotalSteps;
            if (epochEnd)
            {
                Say($"epoch {p.Epoch + 1}: {epochSteps} steps, mean loss {epochLossSum / epochSteps:F4}, {epochWatch.Elapsed.TotalSeconds:F0} s, {imagesPerSecond:F0} img/s");
                epochWatch.Restart();
                epochLossSum = 0;
                epochSteps = 0;
            }
        }

        using (csv)
        {
            if (AnsiConsole.Profile.Capabilities.Interactive && ReferenceEquals(output, Console.Out))
            {
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                             new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(context =>
                    {
                        var task = context.AddTask("training", maxValue: trainer.TotalSteps);
                        task.Value = trainer.Step;
                        TrainWith(trainer, p =>
                        {
                            OnStep(p, s => task.Description = Markup.Escape(s));
                            task.Value = p.Step;
                        });
                    });
            }
            else
            {
                // Not a terminal (CI, pipes): a plain line every 20 steps.
                TrainWith(trainer, p => OnStep(p, s =>
                {
                    if (p.Step % 20 == 0 || p.Step == p.TotalSteps) Say(s);
                }));
            }
        }
    }

    private void TrainWith(Trainer trainer, Action<TrainingProgress> progress)
    {
        onProgress = progress;
        try { trainer.Train(); }
        finally { onProgress = null; }
    }

    private void LoadLossHistory(long upToStep)
    {
        string path = Path.Combine(folder, "loss.csv");
        if (!File.Exists(path)) return;
        // Keep the history up to the checkpoint; steps after it are trained again.
        var kept = File.ReadAllLines(path).Where((line, i) => i == 0 || (long.TryParse(line.Split(',')[0], out long s) && s <= upToStep)).ToList();
        File.WriteAllLines(path, kept);
        foreach (string line in kept.Skip(1))
        {
            var parts = line.Split(',');
            losses.Add((long.Parse(parts[0], CultureInfo.InvariantCulture), double.Parse(parts[1], CultureInfo.InvariantCulture)));
        }
    }

    private void WriteLossFiles()
    {
        if (losses.Count == 0) return;
        var x = losses.Select(l => (double)l.Step).ToArray();
        var y = losses.Select(l => l.Loss).ToArray();
        var smooth = new double[y.Length];
        var average = new SmoothedLoss();
        for (int i = 0; i < y.Length; i++) smooth[i] = average.Add(y[i]);
        LinePlot.SavePng(Path.Combine(folder, "loss.png"), $"{resolved.Entry.Name}: training loss",
                         new[] { ("loss", x, y), ("smoothed", x, smooth) }, logY: true, xLabel: "step", yLabel: "loss");
    }

    private void Say(string line)
    {
        output.WriteLine(line);
        log?.WriteLine($"{DateTime.Now:yyyy-MM-dd HH:mm:ss} {line}");
    }

    /// <summary>Exponential moving average of the loss (0.98), bias-corrected like Adam's moments so it does not lag at the start.</summary>
    private sealed class SmoothedLoss
    {
        private double sum, weight;

        public double Add(double loss)
        {
            sum = 0.98 * sum + 0.02 * loss;
            weight = 0.98 * weight + 0.02;
            return sum / weight;
        }
    }

    /// <summary>Calls back on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
