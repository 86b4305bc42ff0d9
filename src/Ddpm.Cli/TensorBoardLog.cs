using System.Buffers.Binary;
using System.Numerics;
using Ddpm.Evaluation;
using Ddpm.Training;
using TorchSharp;
using TorchSharp.Modules;

namespace Ddpm.Cli;

/// <summary>
/// `training.log: [tensorboard]` (`ddpm train --tensorboard`): the run's loss, learning rate, gradient norm, images/s,
/// evaluation scores and sample grids as TensorBoard event files in the run folder's tensorboard/, written through
/// TorchSharp's SummaryWriter, which appends and flushes every event as it is added (a killed run keeps what it logged).
/// </summary>
internal sealed class TensorBoardLog
{
    /// <summary>The folder under the run folder.</summary>
    public const string Folder = "tensorboard";
    /// <summary>The spelling in `training.log`.</summary>
    public const string Name = "tensorboard";
    /// <summary>How SummaryWriter names its files.</summary>
    public const string FilePattern = "events.out.tfevents.*";

    private readonly SummaryWriter writer;

    private TensorBoardLog(string directory) => writer = torch.utils.tensorboard.SummaryWriter(directory);

    /// <summary>The log folder of a run.</summary>
    public static string Directory(string runFolder) => Path.Combine(runFolder, Folder);

    /// <summary>The event files of a run (none when it has no tensorboard/ folder).</summary>
    public static IEnumerable<string> EventFiles(string runFolder) =>
        System.IO.Directory.Exists(Directory(runFolder)) ? System.IO.Directory.EnumerateFiles(Directory(runFolder), FilePattern) : [];

    /// <summary>
    /// Starts logging a run that continues after <paramref name="step"/> (0 for a new run) in a new event file beside any earlier ones.
    /// </summary>
    public static TensorBoardLog Open(string runFolder, long step)
    {
        // TorchSharp's writer cannot write PyTorch's purge_step marker, and TensorBoard would show the steps a resumed run trains
        // again twice (a zig-zag). So, as loss.csv is cut back to the checkpoint, earlier event files lose their events after it.
        foreach (string file in EventFiles(runFolder).ToList())
            KeepUpTo(file, step);
        return new TensorBoardLog(Directory(runFolder));
    }

    /// <summary>The step's loss, learning rate and gradient norm, and the images/s the progress line shows.</summary>
    public void Step(TrainingProgress p, double imagesPerSecond)
    {
        int step = Checked(p.Step);
        writer.add_scalar("train/loss", (float)p.Loss, step);
        writer.add_scalar("train/learning_rate", (float)p.LearningRate, step);
        writer.add_scalar("train/grad_norm", (float)p.GradNorm, step);
        writer.add_scalar("train/images_per_second", (float)imagesPerSecond, step);
    }

    /// <summary>An evaluation's scores per weights ("ema", "raw"): eval/fid/ema, eval/kid/raw, ...</summary>
    public void Evaluation(long step, IEnumerable<(string Weights, QualityReport Report)> scores)
    {
        int at = Checked(step);
        foreach (var (weights, r) in scores)
        {
            writer.add_scalar($"eval/fid/{weights}", (float)r.Fid, at);
            writer.add_scalar($"eval/kid/{weights}", (float)r.KidMean, at);
            writer.add_scalar($"eval/precision/{weights}", (float)r.Precision, at);
            writer.add_scalar($"eval/recall/{weights}", (float)r.Recall, at);
        }
    }

    /// <summary>A sample grid the run wrote as a PNG, as the image of tag "samples" at its step.</summary>
    public void SampleGrid(long step, string png) => writer.add_img("samples", png, Checked(step));

    /// <summary>SummaryWriter takes an int step.</summary>
    private static int Checked(long step) => step <= int.MaxValue ? (int)step
        : throw new InvalidOperationException($"TensorBoard logs steps up to {int.MaxValue}; this run is at step {step}.");

    /// <summary>
    /// Rewrites an event file with only its records up to <paramref name="step"/>, copied byte for byte, and deletes it when no
    /// summary is left. Reading stops at the first record that is cut short or fails its checksums (a run killed mid-write).
    /// </summary>
    private static void KeepUpTo(string file, long step)
    {
        byte[] bytes = File.ReadAllBytes(file);
        int kept = 0;
        bool summaries = false;
        for (int at = 0; at + 12 <= bytes.Length;)
        {
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            if (MaskedCrc32C(bytes.AsSpan(at, 8)) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8))
                || length > (ulong)(bytes.Length - at - 16)) break;
            var data = bytes.AsSpan(at + 12, (int)length);
            if (MaskedCrc32C(data) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length))) break;
            var e = Tensorboard.Event.Parser.ParseFrom(bytes, at + 12, (int)length); // TorchSharp's generated code parses arrays, not spans
            if (e.Step > step) break; // events are appended in step order
            summaries |= e.Summary is not null;
            at += 16 + (int)length;
            kept = at;
        }
        if (!summaries) File.Delete(file);
        else if (kept < bytes.Length)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Write);
            stream.SetLength(kept);
        }
    }

    /// <summary>TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a constant.</summary>
    private static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8;
    }
}
