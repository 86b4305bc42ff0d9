using System.Globalization;
using Ddpm.Diffusion;
using Ddpm.Evaluation;
using Ddpm.Imaging;
using Ddpm.Models;
using Ddpm.Specs;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>
/// Sample quality during `ddpm train` (`training.eval`): scores the EMA and the raw weights with the data set's feature net,
/// appends to metrics.csv, redraws metrics.png, keeps checkpoints/best.ckpt by the key metric and tells the trainer
/// which weights sample better. Its sampling noise comes from its own generator with a fixed seed, so every evaluation
/// of a run sees the same starting noise and the training trajectory never changes.
/// </summary>
internal sealed class TrainingEvaluation : IDisposable
{
    /// <summary>Below this many samples FID's bias dominates its differences; KID (unbiased) ranks instead.</summary>
    public const int FidMinimumSamples = 1000;
    /// <summary>Added to the run's seed so evaluation noise differs from the sample grids'.</summary>
    private const long SeedOffset = 1_000_003;
    private const int BatchSize = 128;

    private readonly string folder;
    private readonly ModelEntry entry;
    private readonly EvalSpec settings;
    private readonly long seed;
    private readonly Action<string> say;
    private readonly SampleQuality quality;
    private readonly List<(long Step, string Weights, QualityReport Report)> history = new();
    private double best = double.PositiveInfinity;

    public TrainingEvaluation(string folder, ModelEntry entry, TrainingSpec spec, Action<string> say, bool resume)
    {
        this.folder = folder;
        this.entry = entry;
        settings = spec.Eval;
        seed = spec.Seed + SeedOffset;
        this.say = say;
        // Made before training starts, so an unknown data set fails at once and the feature net is ready up front (the shipped
        // one for Fashion-MNIST; for other data, trained once and cached).
        quality = SampleQuality.Create(spec.Dataset, say);
        if (quality.Channels != entry.Channels || quality.ImageSize != entry.ImageSize)
            throw new UsageException($"training.eval: {quality.Dataset} images are {quality.Channels}x{quality.ImageSize}x{quality.ImageSize}, " +
                                     $"{entry.Name} makes {entry.Channels}x{entry.ImageSize}x{entry.ImageSize}.");
        if (resume) LoadHistory();
        else if (File.Exists(MetricsPath)) File.Delete(MetricsPath);
    }

    /// <summary>The key metric: FID from <see cref="FidMinimumSamples"/> samples on, KID below.</summary>
    public string Metric => settings.Samples >= FidMinimumSamples ? "FID" : "KID";

    /// <summary>The latest score of the preferred weights, for the progress line ("FID 23.4"), or null before the first evaluation.</summary>
    public string? Latest { get; private set; }

    /// <summary>The latest evaluation's scores per weights ("ema", "raw"), empty before the first.</summary>
    public IReadOnlyList<(string Weights, QualityReport Report)> LastScores { get; private set; } = [];

    private string MetricsPath => Path.Combine(folder, "metrics.csv");
    private string BestPath => Path.Combine(folder, "checkpoints", "best.ckpt");

    /// <summary>Scores the run's weights at this step; saves best.ckpt, and last.ckpt again when the preferred weights change.</summary>
    public void Evaluate(EvaluationRequest request, string lastCheckpoint)
    {
        var trainer = request.Trainer;
        var candidates = new List<(string Name, SamplingWeights Weights, nn.Module<Tensor, Tensor, Tensor> Model)>();
        if (trainer.EmaModel is { } ema) candidates.Add(("ema", SamplingWeights.Ema, ema));
        candidates.Add(("raw", SamplingWeights.Raw, trainer.Model));

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var scored = new List<(string Name, SamplingWeights Weights, QualityReport Report)>();
        foreach (var (name, weights, model) in candidates)
        {
            // A conditional model is scored on a balanced draw of its classes at its declared guidance.
            var condition = entry.Conditioning is { } c ? Ddpm.Conditioning.ClassCondition.Balanced(c.Classes, settings.Samples, c.Guidance) : null;
            using var images = Sampling.Draw(model, trainer.Diffusion, entry.BatchShape(1), settings.Samples, settings.Sampler, settings.Steps,
                                             eta: 0, seed, BatchSize, condition: condition);
            var report = quality.Score(images, seed: (int)(seed & int.MaxValue), condition?.Labels);
            scored.Add((name, weights, report));
            history.Add((request.Step, name, report));
            AppendRow(request.Step, name, report);
        }
        LastScores = scored.Select(s => (s.Name, s.Report)).ToList();
        var winner = scored.OrderBy(s => Key(s.Report)).First();
        string reason = string.Join(" vs ", scored.Select(s => $"{Metric} {Format(Key(s.Report))} ({s.Name})")) + $" at step {request.Step}";
        var before = trainer.PreferredWeights;
        if (candidates.Count > 1) trainer.PreferWeights(winner.Weights, reason);
        Latest = $"{Metric} {Format(Key(winner.Report))}";
        say($"step {request.Step}: evaluation ({settings.Samples} samples, {Options.DescribeSampler(settings.Sampler, settings.Steps, entry.Schedule.Timesteps, 0)}) " +
            $"{reason}; floor {Format(Key(winner.Report.Floor!))}; feature net {quality.FeatureNet.WeightsSha256?[..12]}; sampling uses the {winner.Name} weights ({watch.Elapsed.TotalSeconds:F0} s)");

        if (Key(winner.Report) < best)
        {
            best = Key(winner.Report);
            trainer.SaveCheckpoint(BestPath);
            say($"step {request.Step}: best {Metric} so far; wrote {BestPath}");
        }
        if (trainer.PreferredWeights != before && File.Exists(lastCheckpoint))
            trainer.SaveCheckpoint(lastCheckpoint); // record the preference in the run's checkpoint right away
        Plot();
    }

    private double Key(QualityReport report) => Metric == "FID" ? report.Fid : report.KidMean;

    private static string Format(double value) => value.ToString(value < 0.1 ? "F5" : "F2", CultureInfo.InvariantCulture);

    private void AppendRow(long step, string weights, QualityReport r)
    {
        bool header = !File.Exists(MetricsPath);
        using var csv = new StreamWriter(MetricsPath, append: true);
        if (header) csv.WriteLine("step,weights,samples,fid,kid_mean,kid_std,precision,recall,class_entropy_bits,floor_fid,floor_kid_mean,floor_precision,floor_recall");
        var f = r.Floor!;
        csv.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{step},{weights},{r.Count},{r.Fid:R},{r.KidMean:R},{r.KidStd:R},{r.Precision:R},{r.Recall:R},{r.ClassEntropyBits:R},{f.Fid:R},{f.KidMean:R},{f.Precision:R},{f.Recall:R}"));
    }

    /// <summary>On --resume: the best score so far comes back from metrics.csv, so best.ckpt is replaced only by a better one.</summary>
    private void LoadHistory()
    {
        if (!File.Exists(MetricsPath)) return;
        var lines = File.ReadAllLines(MetricsPath);
        foreach (string line in lines.Skip(1))
        {
            var parts = line.Split(',');
            if (parts.Length < 5 || !double.TryParse(parts[Metric == "FID" ? 3 : 4], NumberStyles.Float, CultureInfo.InvariantCulture, out double value)) continue;
            best = Math.Min(best, value);
        }
    }

    private void Plot()
    {
        var series = new List<(string Name, double[] X, double[] Y)>();
        foreach (var group in history.GroupBy(h => h.Weights))
        {
            var points = group.OrderBy(h => h.Step).ToList();
            series.Add(($"{Metric} ({group.Key})", points.Select(p => (double)p.Step).ToArray(), points.Select(p => Key(p.Report)).ToArray()));
        }
        var floors = history.Select(h => (h.Step, Key(h.Report.Floor!))).Distinct().OrderBy(p => p.Step).ToList();
        series.Add(("floor (real)", floors.Select(p => (double)p.Step).ToArray(), floors.Select(p => p.Item2).ToArray()));
        // FID is positive and spans orders of magnitude over a run; unbiased KID can dip below 0 near the floor.
        LinePlot.SavePng(Path.Combine(folder, "metrics.png"), $"{entry.Name}: sample quality ({Metric}, {settings.Samples} samples)",
                         series, logY: Metric == "FID", xLabel: "step", yLabel: Metric);
    }

    public void Dispose() => quality.Dispose();
}
