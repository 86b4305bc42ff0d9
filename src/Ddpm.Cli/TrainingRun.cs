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

/// <summary>One `ddpm train` run: its folder, files, progress display and trainer.</summary>
internal sealed class TrainingRun(ResolvedModel resolved, string folder, string device, RunSettings settings, TextWriter output, IProcessGroup group)
    : IDisposable
{
    /// <summary>Closes log.txt (a run in a long-lived process, such as a test host, must not keep it open).</summary>
    public void Dispose() => log?.Dispose();

    /// <summary>Files whose presence means the folder holds a run (a new run would destroy them).</summary>
    private static readonly string[] RunMarkers = ["checkpoints/last.ckpt", "loss.csv", "log.txt"];
    /// <summary>What `--overwrite` deletes: every file a run writes (sample grids are matched by pattern).</summary>
    private static readonly string[] RunFiles =
        ["checkpoints/last.ckpt", "checkpoints/best.ckpt", "loss.csv", "loss.png", "log.txt", "config.yaml", "metrics.csv", "metrics.png"];

    private readonly List<(long Step, double Loss)> losses = new();
    private StreamWriter? log;
    private Action<TrainingProgress>? onProgress; // set while training, by the display in use
    private TrainingEvaluation? evaluation;
    private int finalSamples; // images in the grid after the last step: --final-samples, or on --resume the run's recorded count
    private TensorBoardLog? tensorBoard; // training.log: [tensorboard]

    private string CheckpointPath => Path.Combine(folder, "checkpoints", "last.ckpt");
    /// <summary>Rank 0 (or the only process): the one that reads and writes the run folder and reports.</summary>
    private bool Primary => group.Rank == 0;

    public int Execute()
    {
        var entry = resolved.Entry;
        var spec = resolved.Training;
        // Checked on every rank before anything is written (an --overwrite must not delete the old run for it).
        if (spec.BatchSize % group.Size != 0)
            throw new UsageException($"batch size {spec.BatchSize} does not split evenly over {group.Size} ranks; use a multiple of {group.Size} (--batch-size).");
        if (!Primary) return TrainReplica();
        if (File.Exists(folder))
            throw new UsageException($"--out {folder} is a file; give a folder for the run.");
        // Everything that can refuse the run is checked before the first file is written.
        var checkpointStamp = Stamp(CheckpointPath);
        using var checkedCheckpoint = settings.Resume ? OpenCheckpointToResume() : null;
        bool replace = !settings.Resume && CheckNewRunFolder();
        // The data too: an unknown or broken data set must not leave a half-made run folder (or delete the old run).
        var watch = Stopwatch.StartNew();
        ImageSet data = Datasets.Load(spec.Dataset, entry.Channels, entry.ImageSize, Say);
        var loaded = watch.Elapsed;
        if (spec.BatchSize > data.Count)
        {
            if (settings.BatchSizeGiven)
                throw new UsageException($"--batch-size {spec.BatchSize} is larger than the data set ('{spec.Dataset}', {data.Count:N0} images); use at most {data.Count}.");
            Say($"note: the batch size {spec.BatchSize} is larger than the data set ('{spec.Dataset}', {data.Count:N0} images): each step uses all {data.Count}.");
        }
        // One process owns the folder from here to the end (RunFolderLock). What was checked before is checked again under
        // the lock when another run may have changed it meanwhile: the folder of a new run, a checkpoint rewritten since.
        using var runLock = RunFolderLock.Take(folder);
        if (!settings.Resume) replace = CheckNewRunFolder();
        using var reopened = settings.Resume && Stamp(CheckpointPath) != checkpointStamp ? OpenCheckpointToResume() : null;
        var resumeFrom = reopened ?? checkedCheckpoint;
        finalSamples = !settings.FinalSamplesGiven && resumeFrom is not null && RunConfig.Read(resumeFrom.SpecText).FinalSamples is int recorded
                       && recorded <= TrainCommand.MaxFinalSamples ? recorded : settings.FinalSamples;
        DataParallelRun.ShareCheckpoint(group, resumeFrom, CheckpointPath); // the other ranks wait for this
        if (replace) DeleteRun();
        Directory.CreateDirectory(Path.Combine(folder, "checkpoints"));
        Directory.CreateDirectory(Path.Combine(folder, "samples"));
        log = new StreamWriter(Path.Combine(folder, "log.txt"), append: settings.Resume) { AutoFlush = true };
        string config = RunConfig.Write(entry, spec, device, Allocator.Status, finalSamples);
        File.WriteAllText(Path.Combine(folder, "config.yaml"), config);
        Say($"ddpm train {entry.Name} ({entry.ParameterCount:N0} parameters, {entry.SpecFile}) -> {folder}");
        Say($"device {device}, {get_num_threads()} threads, allocator: {Allocator.Status}{(Denormals.AreFlushed() ? ", denormals flushed" : "")}; {OneDnn.Status}");
        if (group.Size > 1)
            Say($"data-parallel: {group.Size} ranks (MPI), each training on {spec.BatchSize / group.Size} of every batch of {spec.BatchSize}");

        Say($"data: {data.Count:N0} images of {data.Channels}x{data.Height}x{data.Width} from '{spec.Dataset}' ({loaded.TotalSeconds:F1} s)");

        using var evaluation = spec.Eval.Every > 0 ? new TrainingEvaluation(folder, entry, spec, Say, settings.Resume) : null;
        this.evaluation = evaluation;

        manual_seed(spec.Seed); // initial weights depend only on the seed (made on the CPU, then moved: the same on every device)
        using var model = entry.CreateModel();
        model.to(new Device(device));
        if (ConvolutionBackends.ChooseFor(model, spec.Precision, entry.ImageSize, entry.Channels, ConvolutionBackends.Purpose.Training, device, entry.CreateModel) is string convolutions) Say(convolutions);
        var diffusion = entry.Diffusion;
        var loader = ShardedLoader(data, spec);
        using var parallel = new DataParallel(group);
        using var trainer = new Trainer(model, diffusion, loader, spec, entry.CreateModel, new TrainingCallbacks
        {
            Progress = new SynchronousProgress<TrainingProgress>(p => onProgress?.Invoke(p)),
            SampleDue = DrawGrid,
            CheckpointDue = request =>
            {
                request.Trainer.SaveCheckpoint(CheckpointPath);
                group.NoteRecovery(DataParallelRun.CheckpointNote(CheckpointPath, request.Step));
            },
            EvaluationDue = evaluation is null ? null : request =>
            {
                evaluation.Evaluate(request, CheckpointPath);
                tensorBoard?.Evaluation(request.Step, evaluation.LastScores);
            },
            CheckpointInterval = settings.CheckpointInterval > TimeSpan.Zero ? settings.CheckpointInterval : null,
        }, config)
        { Parallel = parallel };

        if (resumeFrom is not null)
        {
            set_num_threads(resumeFrom.TorchThreads); // bit-exact continuation needs the same thread count
            trainer.Restore(resumeFrom);
            Say($"resumed from {CheckpointPath} at step {trainer.Step}");
            group.NoteRecovery(DataParallelRun.CheckpointNote(CheckpointPath, trainer.Step));
        }
        LoadLossHistory(trainer.Step);
        if (spec.Log.Contains(TensorBoardLog.Name))
        {
            tensorBoard = TensorBoardLog.Open(folder, trainer.Step);
            Say($"tensorboard: logging to {TensorBoardLog.Directory(folder)} (view with: tensorboard --logdir {TensorBoardLog.Directory(folder)})");
        }
        if (trainer.Step >= trainer.TotalSteps)
        {
            // A run stopped while it drew its final grid (minutes on a CPU) has every step but not the grid.
            if (finalSamples == 0 || File.Exists(GridPath(trainer.Step)))
            {
                Say($"nothing to do: the run is at step {trainer.Step} of {trainer.TotalSteps}.");
                return DdpmCli.Ok;
            }
            Say($"the run is at step {trainer.Step} of {trainer.TotalSteps}, but its final sample grid {GridPath(trainer.Step)} is missing: drawing it.");
            DrawGrid(new SampleRequest(trainer.Step, IsFinal: true, trainer.SamplingModel, diffusion));
            return DdpmCli.Ok;
        }

        Say($"training {trainer.TotalSteps - trainer.Step:N0} steps ({loader.BatchesPerEpoch} per epoch, batch {loader.BatchSize}{OverRanks()})");
        watch.Restart();
        try
        {
            RunWithProgress(trainer, loader);
        }
        catch (TrainingDivergedException e)
        {
            WriteLossFiles();
            string next = File.Exists(CheckpointPath)
                ? $"No checkpoint of this state was written; the last good one is kept at {CheckpointPath}: resume from it (--resume) with {TrainingDivergedException.Remedy}."
                : $"No checkpoint was written: start again (--overwrite) with {TrainingDivergedException.Remedy}.";
            throw new InvalidOperationException($"{e.Summary} {next}", e);
        }
        WriteLossFiles();
        var (_, peak) = Allocator.ResidentMemory();
        Say($"done: {trainer.Step} steps in {watch.Elapsed:hh\\:mm\\:ss}{OverRanks()}, final loss {losses[^1].Loss:F4}, peak RSS {peak / (1 << 20):N0} MiB");
        if (group.Size > 1)
            Say(Replicas(trainer, parallel));
        Say($"samples: {Path.Combine(folder, "samples")}; checkpoint: {CheckpointPath}; loss curve: {Path.Combine(folder, "loss.png")}");
        return DdpmCli.Ok;
    }

    /// <summary>
    /// A rank other than 0: the same data, model and trainer without the run folder (it may be on another machine); starts
    /// from rank 0's checkpoint or weights, reports nothing but its final checksum and errors.
    /// </summary>
    private int TrainReplica()
    {
        var entry = resolved.Entry;
        var spec = resolved.Training;
        // After rank 0 has checked the run and loaded the data (a first download lands in the cache once).
        using var resumeFrom = DataParallelRun.ShareCheckpoint(group, null, CheckpointPath);
        group.NoteRecovery("Rank 0's run folder keeps the last checkpoint; resume with the same command and --resume.");
        ImageSet data = Datasets.Load(spec.Dataset, entry.Channels, entry.ImageSize, _ => { });
        manual_seed(spec.Seed);
        using var model = entry.CreateModel();
        model.to(new Device(device));
        ConvolutionBackends.ChooseFor(model, spec.Precision, entry.ImageSize, entry.Channels, ConvolutionBackends.Purpose.Training, device, entry.CreateModel);
        using var parallel = new DataParallel(group);
        using var trainer = new Trainer(model, entry.Diffusion, ShardedLoader(data, spec), spec, entry.CreateModel) { Parallel = parallel };
        if (resumeFrom is not null)
        {
            set_num_threads(resumeFrom.TorchThreads);
            trainer.Restore(resumeFrom);
        }
        if (trainer.Step >= trainer.TotalSteps) return DdpmCli.Ok;
        trainer.Train();
        output.WriteLine(Replicas(trainer, parallel));
        return DdpmCli.Ok;
    }

    /// <summary>This rank's part of every batch of the spec's size (the whole batch for one process).</summary>
    private BatchLoader ShardedLoader(ImageSet data, Ddpm.Specs.TrainingSpec spec) =>
        new(data, spec.BatchSize, spec.RandomFlip, spec.Seed) { Shard = new DataShard(group.Rank, group.Size) };

    private string OverRanks() => group.Size > 1 ? $" over {group.Size} ranks" : "";

    /// <summary>The closing line of each rank: equal checksums on every rank mean identical weights and EMA.</summary>
    private string Replicas(Trainer trainer, DataParallel parallel) =>
        string.Create(CultureInfo.InvariantCulture,
            $"rank {group.Rank} of {group.Size}: step {trainer.Step}, weights checksum {parallel.LastChecksum:x16}, " +
            $"gradient allreduce {parallel.AllReduceTime.TotalMilliseconds / Math.Max(1, parallel.AllReduceCount):F1} ms per step in {parallel.BucketCount} buckets");

    /// <summary>
    /// Loads the checkpoint to resume and checks it belongs to this model and batch size, before anything is written
    /// (a wrong spec must not overwrite the run's config.yaml).
    /// </summary>
    private Checkpoint OpenCheckpointToResume()
    {
        if (!File.Exists(CheckpointPath))
            throw new UsageException($"--resume: no checkpoint at {CheckpointPath}.");
        var checkpoint = Checkpoint.Load(CheckpointPath);
        try
        {
            var entry = resolved.Entry;
            var recorded = RunConfig.Read(checkpoint.SpecText);
            if (recorded.Model is string model && model != entry.Name)
                throw new UsageException($"--resume: this checkpoint is model {model}, the spec is model {entry.Name}; resume with {model}'s spec, or train {entry.Name} into a new --out.");
            if (recorded.ArchitectureHash is string hash && hash != entry.ArchitectureHash)
                throw new UsageException($"--resume: this checkpoint's {entry.Name} has another architecture (hash {hash}) than this build's (hash {entry.ArchitectureHash}); resume with the ddpm that wrote it, or train into a new --out.");
            checkpoint.CheckSchedule(entry.Schedule.Fingerprint);
            if (recorded.Dataset is string trainedOn && !string.Equals(trainedOn, resolved.Training.Dataset, StringComparison.Ordinal))
                throw new UsageException($"--resume: the checkpoint was trained on '{trainedOn}', this run asks for '{resolved.Training.Dataset}'; resume on the same data " +
                                         $"(--dataset {trainedOn}), or train on the other data into a new --out.");
            int batchSize = resolved.Training.BatchSize;
            if (recorded.BatchSize is int trained && trained != batchSize)
                throw new UsageException($"--resume: the checkpoint was trained with batch size {trained}, this run asks for {batchSize}; " +
                                         $"an exact resume needs the same batch size: use --batch-size {trained}, or start a new run with a new --out.");
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private string GridPath(long step) => Path.Combine(folder, "samples", $"step-{step:D6}.png");

    /// <summary>
    /// Draws a sample grid with the project's default sampler (SpecDefaults.Sampler), as `ddpm sample` draws without options:
    /// 64 images during training, the final grid's count after the last step (announced first: it takes minutes on a CPU).
    /// </summary>
    private void DrawGrid(SampleRequest request)
    {
        var entry = resolved.Entry;
        int count = request.IsFinal ? finalSamples : 64;
        if (count == 0) return;
        // A conditional model's grid has one row per class, at its declared guidance.
        var condition = entry.Conditioning is { } c
            ? Ddpm.Conditioning.ClassCondition.EachClass(c.Classes, (count + c.Classes - 1) / c.Classes, c.Guidance) : null;
        var shape = entry.BatchShape(condition?.Labels.Count ?? count);
        string path = GridPath(request.Step);
        int steps = SpecDefaults.SamplerStepsFor(entry.Schedule.Timesteps);
        string sampler = Options.DescribeSampler(SpecDefaults.Sampler, steps, entry.Schedule.Timesteps, 0);
        if (request.IsFinal)
            Say($"step {request.Step}: drawing the final sample grid, {shape[0]} images ({sampler}), into {path}");
        var sampleWatch = Stopwatch.StartNew();
        Sampling.WriteGrid(request.Model, request.Diffusion, shape, SpecDefaults.Sampler, steps, 0, resolved.Training.Seed, path, condition: condition);
        tensorBoard?.SampleGrid(request.Step, path);
        Say($"step {request.Step}: wrote {path} ({sampler}, {sampleWatch.Elapsed.TotalSeconds:F0} s)");
    }

    /// <summary>When and how large a file was last written (default when it does not exist).</summary>
    private static (DateTime Written, long Length) Stamp(string path) =>
        File.Exists(path) ? (File.GetLastWriteTimeUtc(path), new FileInfo(path).Length) : default;

    /// <summary>Refuses a folder that holds a run unless --overwrite; true when there is a run to delete.</summary>
    private bool CheckNewRunFolder()
    {
        string? marker = RunMarkers.FirstOrDefault(m => File.Exists(Path.Combine(folder, m)))
                         ?? TensorBoardLog.EventFiles(folder).Select(f => Path.GetRelativePath(folder, f)).FirstOrDefault();
        if (marker is null) return false;
        if (!settings.Overwrite)
            throw new UsageException($"{folder} already holds a run ({marker}); continue it with --resume, choose a new --out, or replace it with --overwrite.");
        return true;
    }

    private void DeleteRun()
    {
        foreach (string file in RunFiles)
            File.Delete(Path.Combine(folder, file));
        string samples = Path.Combine(folder, "samples");
        if (Directory.Exists(samples))
            foreach (string grid in Directory.EnumerateFiles(samples, "step-*.png"))
                File.Delete(grid);
        foreach (string events in TensorBoardLog.EventFiles(folder).ToList())
            File.Delete(events);
        output.WriteLine($"--overwrite: deleted the run in {folder}");
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
            tensorBoard?.Step(p, imagesPerSecond);
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
        LinePlot.SaveLossCurve(Path.Combine(folder, "loss.png"), $"{resolved.Entry.Name}: training loss", x, y, smooth);
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
}
