using Ddpm.IO;
using System.Globalization;
using Ddpm.Training;

namespace Ddpm.Server;

/// <summary>
/// The folder <c>ddpm serve</c> serves. Every path a request names is made here from plain names (no separators, no
/// <c>..</c>, nothing absolute) and resolved with its symbolic links followed; one that ends outside the folder is refused.
/// Nothing here writes, deletes or locks a file.
/// </summary>
internal sealed class RunsFolder
{
    public RunsFolder(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"the runs folder '{root}' does not exist.");
        Root = FilePaths.RealPath(root);
    }

    /// <summary>The folder, as a full path with its links followed.</summary>
    public string Root { get; }

    /// <summary>The file or folder <paramref name="parts"/> names under the root, checked; <paramref name="field"/> names the request field for the error.</summary>
    public string Inside(string field, params string[] parts)
    {
        foreach (string part in parts) CheckName(field, part);
        string real = FilePaths.RealPath(Path.Combine([Root, .. parts]));
        if (!IsUnder(real, Root))
            throw ApiError.BadField(field, $"{field} '{Echo(string.Join('/', parts))}' leads out of the runs folder (a symbolic link); only files inside it are served.");
        return real;
    }

    /// <summary>A path given with '/' separators (an .onnx model's place in the folder), checked part by part.</summary>
    public string InsideRelative(string field, string relative)
    {
        if (string.IsNullOrWhiteSpace(relative)) throw ApiError.BadField(field, $"{field} is empty; give a path inside the runs folder, e.g. 'fashion/model.onnx'.");
        if (Path.IsPathRooted(relative) || relative.StartsWith('/') || relative.StartsWith('\\'))
            throw ApiError.BadField(field, $"{field} '{Echo(relative)}' is an absolute path; give a path inside the runs folder.");
        return Inside(field, relative.Split('/'));
    }

    private static void CheckName(string field, string part)
    {
        if (part.Length == 0 || part == "." || part == ".." || part.IndexOfAny(['/', '\\', '\0', ':']) >= 0 || Path.IsPathRooted(part) ||
            part.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw ApiError.BadField(field, $"{field} '{Echo(part)}' is not a plain name inside the runs folder (no '..', separators or absolute paths).");
    }

    /// <summary>The run folders: folders directly inside the root that hold a run's files, by name.</summary>
    public IEnumerable<string> RunNames()
    {
        foreach (string folder in Directory.EnumerateDirectories(Root).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(folder);
            string real;
            try { real = Inside("run", name); }
            catch (ApiError) { continue; }
            if (IsRun(real)) yield return name;
        }
    }

    /// <summary>The exported models: .onnx files in the root and in the run folders, as paths with '/' separators.</summary>
    public IEnumerable<string> OnnxModels()
    {
        var found = new List<string>();
        void Add(string folder, string prefix)
        {
            foreach (string file in Directory.EnumerateFiles(folder, "*.onnx"))
            {
                string relative = prefix + Path.GetFileName(file);
                try { InsideRelative("model", relative); }
                catch (ApiError) { continue; }
                found.Add(relative);
            }
        }
        Add(Root, "");
        foreach (string folder in Directory.EnumerateDirectories(Root))
        {
            string name = Path.GetFileName(folder);
            try { Add(Inside("run", name), name + "/"); }
            catch (ApiError) { }
        }
        return found.Order(StringComparer.Ordinal);
    }

    /// <summary>A run folder by name: 400 for a name that is not one, 404 for none of that name.</summary>
    public string Run(string name)
    {
        string folder = Inside("run", name);
        if (!Directory.Exists(folder) || !IsRun(folder)) throw ApiError.NotFound($"no run '{Echo(name)}' in the runs folder.");
        return folder;
    }

    private static bool IsRun(string folder) =>
        File.Exists(Path.Combine(folder, "config.yaml")) || File.Exists(Path.Combine(folder, "loss.csv")) ||
        File.Exists(Path.Combine(folder, "checkpoints", "last.ckpt"));

    public static string Echo(string value) => value.Length <= 40 ? value : value[..40] + "...";

    private static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, PathComparison);

    private static StringComparison PathComparison => OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

}

/// <summary>One row of loss.csv.</summary>
public sealed record LossPoint(long Step, double Loss, double? LearningRate, double? GradNorm);

/// <summary>One row of metrics.csv: a scoring of the EMA or the raw weights at a step.</summary>
public sealed record EvaluationPoint(long Step, string Weights, int Samples, double Fid, double KidMean, double Precision, double Recall);

/// <summary>A sample grid the run wrote (samples/step-NNNNNN.png).</summary>
public sealed record SampleGrid(long Step, string File, string Url);

/// <summary>A run as the list shows it.</summary>
/// <param name="Name">The run folder's name.</param>
/// <param name="Model">The model trained (config.yaml's model).</param>
/// <param name="Step">The last step in loss.csv (0 before the first).</param>
/// <param name="TotalSteps">The steps the run was set to train, when its settings say (training.steps).</param>
/// <param name="Status">training (a live ddpm train holds the run's lock), finished (it reached its last step), or stopped.</param>
/// <param name="LastLoss">The loss of the last step, if any.</param>
/// <param name="BestFid">The lowest FID of its evaluations (EMA or raw), if any.</param>
/// <param name="BestKid">The lowest KID of its evaluations, if any.</param>
/// <param name="Checkpoints">The checkpoints there: last, best.</param>
/// <param name="ClassNames">A class-conditional model's classes (for the sampling form's class); null for an unconditional one.</param>
/// <param name="Guidance">A class-conditional model's declared guidance scale.</param>
public sealed record RunSummary(string Name, string? Model, long Step, long? TotalSteps, string Status, double? LastLoss, double? BestFid,
                                double? BestKid, IReadOnlyList<string> Checkpoints, IReadOnlyList<string>? ClassNames, double? Guidance);

/// <summary>A run's curves and grids, as its files hold them.</summary>
public sealed record RunMetrics(RunSummary Run, IReadOnlyList<LossPoint> Loss, IReadOnlyList<EvaluationPoint> Evaluation, IReadOnlyList<SampleGrid> Samples);

/// <summary>Reads a run folder's files as they are while ddpm train writes them (a half-written last line is left for next time).</summary>
internal static class RunFiles
{
    public const string Training = "training", Finished = "finished", Stopped = "stopped";

    public static RunSummary Summary(string name, string folder) => Read(name, folder, sinceStep: long.MaxValue).Run;

    /// <summary>The run's summary, its loss rows after <paramref name="sinceStep"/> (all for -1), its evaluations and grids.</summary>
    public static RunMetrics Read(string name, string folder, long sinceStep = -1)
    {
        var config = ReadText(Path.Combine(folder, "config.yaml")) is { } text ? RunConfig.Read(text) : null;
        var loss = ReadLoss(Path.Combine(folder, "loss.csv"));
        var evaluation = ReadEvaluation(Path.Combine(folder, "metrics.csv"));
        long step = loss.Count > 0 ? loss[^1].Step : 0;
        long? total = config?.Training?.Steps is int steps and > 0 ? steps : null;
        var checkpoints = new[] { "last", "best" }.Where(c => File.Exists(Path.Combine(folder, "checkpoints", c + ".ckpt"))).ToArray();
        string status = RunLockProbe.IsHeld(Path.Combine(folder, "run.lock")) ? Training
            : (total is long t && step >= t) || LogSaysDone(Path.Combine(folder, "log.txt")) ? Finished : Stopped;
        static double? Min(IEnumerable<double> values) => values.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Min() is var m && double.IsFinite(m) ? m : null;
        var conditioning = config?.Model is { } model ? Ddpm.Models.ModelCatalog.Find(model)?.Conditioning : null;
        var classes = conditioning is null ? null : DiffusionModel.NamesOfClasses(conditioning, null, config?.Dataset ?? "");
        var summary = new RunSummary(name, config?.Model, step, total, status, loss.Count > 0 ? loss[^1].Loss : null,
                                     Min(evaluation.Select(e => e.Fid)), Min(evaluation.Select(e => e.KidMean)), checkpoints, classes, conditioning?.Guidance);
        var samples = new List<SampleGrid>();
        string samplesFolder = Path.Combine(folder, "samples");
        if (Directory.Exists(samplesFolder))
            foreach (string file in Directory.EnumerateFiles(samplesFolder, "step-*.png"))
                if (SampleStep(Path.GetFileName(file)) is long s)
                    samples.Add(new SampleGrid(s, Path.GetFileName(file), $"/api/runs/{Uri.EscapeDataString(name)}/samples/{Path.GetFileName(file)}"));
        return new RunMetrics(summary, loss.Where(p => p.Step > sinceStep).ToArray(), evaluation, samples.OrderBy(s => s.Step).ToArray());
    }

    /// <summary>The step of a grid's file name (step-000120.png), or null for any other name.</summary>
    public static long? SampleStep(string file) =>
        file.StartsWith("step-", StringComparison.Ordinal) && file.EndsWith(".png", StringComparison.Ordinal) &&
        long.TryParse(file.AsSpan(5, file.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out long step) ? step : null;

    /// <summary>A file's text read beside its writer (no lock taken that a writer would meet), or null when it is not there.</summary>
    private static string? ReadText(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            return null;
        }
    }

    /// <summary>The complete lines of a file that is being appended to: a last line without its newline is not yet whole.</summary>
    private static IEnumerable<string[]> Rows(string path)
    {
        string? text = ReadText(path);
        if (text is null) return [];
        int end = text.LastIndexOf('\n');
        if (end < 0) return [];
        return text[..end].Split('\n').Skip(1).Select(l => l.TrimEnd('\r').Split(',')).Where(r => r.Length > 1);
    }

    private static double? Number(string[] row, int i) =>
        i < row.Length && double.TryParse(row[i], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : null;

    private static List<LossPoint> ReadLoss(string path)
    {
        var points = new List<LossPoint>();
        foreach (var row in Rows(path))
            if (long.TryParse(row[0], NumberStyles.None, CultureInfo.InvariantCulture, out long step) && Number(row, 1) is double loss)
                points.Add(new LossPoint(step, loss, Number(row, 2), Number(row, 3)));
        return points;
    }

    private static List<EvaluationPoint> ReadEvaluation(string path)
    {
        // step,weights,samples,fid,kid_mean,kid_std,precision,recall,... (TrainingEvaluation)
        var points = new List<EvaluationPoint>();
        foreach (var row in Rows(path))
            if (row.Length >= 8 && long.TryParse(row[0], NumberStyles.None, CultureInfo.InvariantCulture, out long step) &&
                int.TryParse(row[2], NumberStyles.None, CultureInfo.InvariantCulture, out int samples))
                points.Add(new EvaluationPoint(step, row[1], samples, Number(row, 3) ?? double.NaN, Number(row, 4) ?? double.NaN,
                                               Number(row, 6) ?? double.NaN, Number(row, 7) ?? double.NaN));
        return points;
    }

    /// <summary>Whether ddpm train's log ends with its "done:" line (a run set by epochs has no step total in its settings).</summary>
    private static bool LogSaysDone(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            stream.Seek(Math.Max(0, stream.Length - 4096), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            string tail = reader.ReadToEnd();
            int done = tail.LastIndexOf(" done: ", StringComparison.Ordinal);
            return done >= 0 && tail.IndexOf(" resumed from ", done, StringComparison.Ordinal) < 0 && tail.IndexOf(" training ", done, StringComparison.Ordinal) < 0;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            return false;
        }
    }
}
