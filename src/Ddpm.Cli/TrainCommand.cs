using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Distributed;
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
        var outDir = new Option<string?>("--out") { Description = "Run folder (default: runs/<spec name>). A folder that holds a run needs --resume or --overwrite." };
        var steps = new Option<int?>("--steps") { Description = "Train this many optimiser steps (overrides the spec's epochs)." };
        var epochs = new Option<int?>("--epochs") { Description = "Train this many epochs." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Images per step (on --resume it must be the checkpoint's)." };
        var device = Options.Device();
        var seed = new Option<long?>("--seed") { Description = "Seed for weights, data order and noise." };
        var dataset = new Option<string?>("--dataset")
        {
            Description = "The data set to train on (default: the spec's training.dataset; fashion-mnist for a model declared with attributes); " +
                          Ddpm.Data.Datasets.Help + ".",
        };
        var resume = new Option<bool>("--resume") { Description = "Continue from the run folder's last checkpoint." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Start a new run in a folder that holds one, deleting its checkpoints, samples, logs and loss curve." };
        var sampleEvery = new Option<int?>("--sample-every")
        {
            Description = $"Write a 64-image sample grid every N steps (0: none during training; default: the spec's sample_every), drawn as ddpm sample " +
                          $"draws by default ({Options.DefaultSamplerName}, {SpecDefaults.SamplerSteps} model calls).",
        };
        var finalSamples = new Option<int>("--final-samples")
        {
            Description = $"Images in the sample grid drawn after the last step with the default sampler ({Options.DefaultSamplerName}, {SpecDefaults.SamplerSteps} " +
                          $"model calls; 0: none), at most {MaxFinalSamples}.",
            DefaultValueFactory = _ => 64,
        };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Write a checkpoint every N steps (0: by time and at the end only; default: the spec's checkpoint_every, 500)." };
        var checkpointMinutes = new Option<double>("--checkpoint-minutes")
        {
            Description = "Also write a checkpoint after every M minutes of training (0: off), so a killed run loses at most that much.",
            DefaultValueFactory = _ => 10.0,
        };
        var precision = Options.Precision();
        var evalEvery = new Option<int?>("--eval-every") { Description = "Score sample quality every N steps and at the end (0: never; default: the spec's training.eval.every)." };
        var evalSamples = new Option<int?>("--eval-samples") { Description = "Images per evaluation (default: the spec's training.eval.samples, 256)." };
        var watchdogSeconds = new Option<int?>("--watchdog-seconds")
        {
            Description = $"Under mpirun: end every rank when a collective waits this long on a rank that shows no sign of life, naming it " +
                          $"(0: never; default: {DataParallelRun.WatchdogVariable}, else {DataParallelRun.DefaultWatchdogSeconds}).",
        };
        var tensorboard = new Option<bool>("--tensorboard")
        {
            Description = "Also log loss, learning rate, gradient norm, images/s, evaluation scores and sample grids for TensorBoard in the run folder's " +
                          "tensorboard/ (as the spec's training.log: [tensorboard]).",
        };
        var command = new Command("train", "Train a model and write checkpoints, sample grids and the loss curve to a run folder.")
        {
            target, outDir, steps, epochs, batchSize, device, seed, dataset, resume, overwrite, sampleEvery, finalSamples, checkpointEvery, checkpointMinutes,
            precision, evalEvery, evalSamples, watchdogSeconds, tensorboard,
        };
        Options.AtLeast(steps, 1);
        Options.AtLeast(epochs, 1);
        Options.AtLeast(batchSize, 1);
        Options.WholeNumber(seed);
        Options.AtLeast(sampleEvery, 0);
        Options.Between(finalSamples, 0, MaxFinalSamples);
        Options.AtLeast(checkpointEvery, 0);
        Options.FiniteBetween(checkpointMinutes, 0, 7 * 24 * 60);
        Options.AtLeast(evalEvery, 0);
        Options.AtLeast(evalSamples, 2);
        Options.AtLeast(watchdogSeconds, 0);
        command.Validators.Add(result =>
        {
            // Presence only: reading a value that failed to parse would throw.
            if (result.GetResult(steps) is not null && result.GetResult(epochs) is not null)
                result.AddError("Use --steps or --epochs, not both.");
            if (result.GetResult(resume) is not null && result.GetResult(overwrite) is not null)
                result.AddError("Use --resume (continue the run) or --overwrite (replace it), not both.");
        });
        command.SetAction(parse =>
        {
            var resolved = ModelResolver.Resolve(parse.GetValue(target)!);
            var training = resolved.Training;
            if (parse.GetValue(steps) is int s) { training.Steps = s; }
            if (parse.GetValue(epochs) is int e) { training.Epochs = e; training.Steps = null; }
            if (parse.GetValue(batchSize) is int b) training.BatchSize = b;
            if (parse.GetValue(seed) is long sd) training.Seed = sd;
            if (parse.GetValue(dataset) is string ds) training.Dataset = ds;
            if (parse.GetValue(sampleEvery) is int se) training.SampleEvery = se;
            if (parse.GetValue(checkpointEvery) is int ce) training.CheckpointEvery = ce;
            if (parse.GetValue(precision) is string p) training.Precision = p;
            if (parse.GetValue(evalEvery) is int ee) training.Eval.Every = ee;
            if (parse.GetValue(evalSamples) is int es) training.Eval.Samples = es;
            if (parse.GetValue(tensorboard) && !training.Log.Contains(TensorBoardLog.Name)) training.Log = [.. training.Log, TensorBoardLog.Name];
            string folder = parse.GetValue(outDir) ?? Path.Combine("runs", resolved.SpecName);
            string deviceName = Options.ResolveDevice(parse.GetValue(device));
            Options.CheckPrecisionOnDevice(training.Precision, deviceName);
            var settings = new RunSettings(parse.GetValue(resume), parse.GetValue(overwrite), parse.GetValue(finalSamples),
                                           TimeSpan.FromMinutes(parse.GetValue(checkpointMinutes)))
            {
                BatchSizeGiven = parse.GetValue(batchSize) is not null,
                FinalSamplesGiven = parse.GetResult(finalSamples) is { Implicit: false },
            };
            // Under mpirun every rank runs this; rank 0 owns the run folder (DataParallelRun).
            return DataParallelRun.Run(Console.Error, group =>
                                       {
                                           using var run = new TrainingRun(resolved, folder, deviceName, settings, output, group);
                                           return run.Execute();
                                       },
                                       parse.GetValue(watchdogSeconds));
        });
        return command;
    }

    /// <summary>The largest final grid: it is drawn in one batch.</summary>
    public const int MaxFinalSamples = 1024;
}
