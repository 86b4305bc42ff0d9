using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Ddpm.Evaluation;
using Ddpm.Specs;

namespace Ddpm.Cli.Tests;

/// <summary>
/// `ddpm train --tensorboard` (training.log: [tensorboard]): the event files read back with a reader of their own here
/// (TFRecord framing and checksums, the few Event fields TensorBoard shows), against loss.csv and the sample grids.
/// </summary>
[Collection("cli")] // training runs change torch's thread count; keep them apart
public sealed class TensorBoardTests : IDisposable
{
    private static readonly string[] StepTags = ["train/loss", "train/learning_rate", "train/grad_norm", "train/images_per_second"];
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-tensorboard-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    [Fact]
    public void Train_logs_every_row_of_loss_csv_and_each_sample_grid()
    {
        string run = Path.Combine(root, "run");
        var (code, output, error) = Ddpm("train", "TinyUNet", "--out", run, "--steps", "12", "--sample-every", "6", "--final-samples", "16", "--tensorboard");
        Assert.True(code == 0, error + output);
        Assert.Contains($"tensorboard: logging to {Path.Combine(run, "tensorboard")}", output);
        Assert.Contains("log: [\"tensorboard\"]", File.ReadAllText(Path.Combine(run, "config.yaml")));

        var files = Directory.GetFiles(Path.Combine(run, "tensorboard"));
        var file = Assert.Single(files);
        Assert.StartsWith("events.out.tfevents.", Path.GetFileName(file));
        var events = EventFile.Read(file);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        // Seconds since 1970, as TensorBoard reads them (TorchSharp 0.107 writes the file's opening event with DateTime ticks instead).
        Assert.All(events.Skip(1), e => Assert.InRange(e.WallTime, 1.5e9, 1e10));

        AssertScalarsAreLossCsv(events, Path.Combine(run, "loss.csv"), 12);
        var images = events.Where(e => e.Tag == "samples").ToList();
        Assert.Equal(new[] { 6L, 12L }, images.Select(e => e.Step));
        foreach (var image in images)
        {
            var (width, height) = PngSize(File.ReadAllBytes(Path.Combine(run, "samples", $"step-{image.Step:D6}.png")));
            Assert.Equal((width, height), (image.Width, image.Height));
            Assert.Equal((width, height), PngSize(image.Png!)); // the embedded PNG itself
        }
        // 64 images at step 6 and the 16-image final grid at step 12: two sizes, so the sizes are each grid's own.
        Assert.NotEqual((images[0].Width, images[0].Height), (images[1].Width, images[1].Height));
    }

    [Fact]
    public void Resume_continues_the_series_without_repeating_the_steps_trained_again()
    {
        string run = Path.Combine(root, "run");
        string[] train = ["train", "TinyUNet", "--out", run, "--sample-every", "0", "--final-samples", "0", "--checkpoint-every", "5", "--tensorboard"];
        string checkpoint = Path.Combine(run, "checkpoints", "last.ckpt");
        Assert.Equal(0, Ddpm([.. train, "--steps", "5"]).Code);
        File.Copy(checkpoint, Path.Combine(root, "step5.ckpt"));
        // Steps 6-8 are logged, then the run "dies" with its last checkpoint at step 5: they are trained, and logged, again.
        var second = Ddpm([.. train, "--steps", "8", "--resume"]);
        Assert.True(second.Code == 0, second.Err + second.Out);
        Assert.Equal(8, EventFiles(run).SelectMany(f => f).Count(e => e.Tag == "train/loss"));
        File.Copy(Path.Combine(root, "step5.ckpt"), checkpoint, overwrite: true);
        var (code, output, error) = Ddpm([.. train, "--steps", "12", "--resume"]);
        Assert.True(code == 0, error + output);
        Assert.Contains("resumed from", output);

        var files = EventFiles(run);
        Assert.Equal(2, files.Count); // the first run's, and the last one's; the second held only steps trained again
        Assert.Equal(5, files[0].Where(e => e.Tag == "train/loss").Max(e => e.Step));
        Assert.Equal(6, files[1].Where(e => e.Tag == "train/loss").Min(e => e.Step));
        AssertScalarsAreLossCsv(files.SelectMany(f => f).ToList(), Path.Combine(run, "loss.csv"), 12);
    }

    [Fact]
    public void Overwrite_deletes_the_old_runs_event_files()
    {
        string run = Path.Combine(root, "run");
        string[] train = ["train", "TinyUNet", "--out", run, "--sample-every", "0", "--final-samples", "0", "--tensorboard"];
        Assert.Equal(0, Ddpm([.. train, "--steps", "3"]).Code);
        Assert.Equal(0, Ddpm([.. train, "--steps", "2", "--overwrite"]).Code);
        var events = EventFiles(run).SelectMany(f => f).ToList();
        Assert.Equal(new[] { 1L, 2L }, events.Where(e => e.Tag == "train/loss").Select(e => e.Step));
    }

    [Fact]
    public void Event_files_alone_mark_a_run_that_a_new_run_does_not_mix_with()
    {
        string run = Path.Combine(root, "run");
        string[] train = ["train", "TinyUNet", "--out", run, "--steps", "2", "--sample-every", "0", "--final-samples", "0", "--tensorboard"];
        Assert.Equal(0, Ddpm(train).Code);
        foreach (string file in new[] { "loss.csv", "log.txt", "checkpoints/last.ckpt" }) File.Delete(Path.Combine(run, file));
        string events = Assert.Single(Directory.GetFiles(Path.Combine(run, "tensorboard")));
        var (code, _, error) = Ddpm(train);
        Assert.Equal(2, code);
        Assert.Equal($"ddpm: {run} already holds a run ({Path.Combine("tensorboard", Path.GetFileName(events))}); continue it with --resume, " +
                     "choose a new --out, or replace it with --overwrite.", error.TrimEnd());
        Assert.True(File.Exists(events));
    }

    [Fact]
    public void Evaluations_log_fid_kid_precision_and_recall_per_weights()
    {
        string folder = Path.Combine(root, "run");
        var log = TensorBoardLog.Open(folder, 0);
        log.Evaluation(40, [("ema", Report(12.5, 0.031, 0.75, 0.5)), ("raw", Report(20.25, 0.0625, 0.625, 0.375))]);
        var events = EventFile.Read(Assert.Single(Directory.GetFiles(TensorBoardLog.Directory(folder))));
        var scalars = events.Where(e => e.Tag is not null).ToDictionary(e => e.Tag!, e => (e.Step, e.Value));
        Assert.Equal(new Dictionary<string, (long, float)>
        {
            ["eval/fid/ema"] = (40, 12.5f), ["eval/kid/ema"] = (40, 0.031f), ["eval/precision/ema"] = (40, 0.75f), ["eval/recall/ema"] = (40, 0.5f),
            ["eval/fid/raw"] = (40, 20.25f), ["eval/kid/raw"] = (40, 0.0625f), ["eval/precision/raw"] = (40, 0.625f), ["eval/recall/raw"] = (40, 0.375f),
        }, scalars);

        static QualityReport Report(double fid, double kid, double precision, double recall) =>
            new("synthetic", 64, fid, kid, 0.001, precision, recall, new ClassHistogram(["a"], [64]), 1, 64, 10, 64, 3, 0, null);
    }

    [Fact]
    public void The_spec_key_reads_writes_back_and_names_an_unknown_value()
    {
        const string spec = "model: { name: M, channels: 1, image_size: 8, dim: 8 }\ntraining:\n  log: [tensorboard]\n";
        var document = SpecYaml.Read(spec);
        Assert.Empty(document.Errors);
        Assert.Equal(new[] { "tensorboard" }, document.Training.Log);
        Assert.Contains("  log: [\"tensorboard\"]\n", SpecWriter.TrainingYaml(document.Training));
        Assert.Equal(new[] { "tensorboard" }, SpecYaml.ReadTrainingOf(SpecWriter.TrainingYaml(document.Training), out _)!.Log);
        Assert.Empty(SpecYaml.Read(spec.Replace("[tensorboard]", "[]")).Training.Log);

        var typo = Assert.Single(SpecYaml.Read(spec.Replace("[tensorboard]", "[tensorbord]")).Errors);
        Assert.Equal("'training.log[0]' has unknown value 'tensorbord' (did you mean 'tensorboard'?); use tensorboard", typo.Message);
        var scalar = Assert.Single(SpecYaml.Read(spec.Replace("[tensorboard]", "tensorboard")).Errors);
        Assert.Equal("'training.log' must be a list such as [tensorboard], got 'tensorboard'", scalar.Message);
        Assert.Equal(new[] { "'training.log' has unknown value 'wandb'; use tensorboard" }, TrainingRules.Problems(new TrainingSpec { Log = ["wandb"] }));
    }

    /// <summary>Each step's loss, learning rate and gradient norm is loss.csv's row (as float32), logged once; images/s is positive.</summary>
    private static void AssertScalarsAreLossCsv(IReadOnlyList<Event> events, string lossCsv, int steps)
    {
        var rows = File.ReadAllLines(lossCsv).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(steps, rows.Count);
        foreach (string tag in StepTags)
            Assert.Equal(Enumerable.Range(1, steps).Select(s => (long)s), events.Where(e => e.Tag == tag).Select(e => e.Step).Order());
        for (int column = 1; column <= 3; column++)
        {
            var expected = rows.ToDictionary(r => long.Parse(r[0], CultureInfo.InvariantCulture), r => (float)double.Parse(r[column], CultureInfo.InvariantCulture));
            Assert.Equal(expected, events.Where(e => e.Tag == StepTags[column - 1]).ToDictionary(e => e.Step, e => e.Value));
        }
        Assert.All(events.Where(e => e.Tag == "train/images_per_second"), e => Assert.True(e.Value > 0, $"images/s {e.Value} at step {e.Step}"));
    }

    /// <summary>Every event file of the run, oldest first (SummaryWriter names them by time).</summary>
    private static List<List<Event>> EventFiles(string run) =>
        Directory.GetFiles(Path.Combine(run, "tensorboard")).Order(StringComparer.Ordinal).Select(EventFile.Read).ToList();

    private static (int Width, int Height) PngSize(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }, png[..8]);
        return ((int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(16)), (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(20)));
    }

    /// <summary>One Event, flattened: its first summary value, if any (SummaryWriter writes one per event).</summary>
    internal sealed record Event(double WallTime, long Step, string? FileVersion, string? Tag, float Value, int Width, int Height, byte[]? Png);

    /// <summary>A TFRecord file of Event protobufs: uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the data.</summary>
    internal static class EventFile
    {
        public static List<Event> Read(string path)
        {
            byte[] bytes = File.ReadAllBytes(path);
            var events = new List<Event>();
            int at = 0;
            while (at < bytes.Length)
            {
                Assert.True(bytes.Length - at >= 12, $"{path}: a record header cut short at byte {at}");
                long length = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at));
                Assert.Equal(MaskedCrc(bytes.AsSpan(at, 8)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
                Assert.InRange(length, 0, bytes.Length - at - 16);
                var data = bytes.AsSpan(at + 12, (int)length);
                Assert.Equal(MaskedCrc(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length)));
                events.Add(ParseEvent(data.ToArray()));
                at += 16 + (int)length;
            }
            return events;
        }

        // Event: 1 wall_time (double), 2 step (varint), 3 file_version (string), 5 summary; Summary: 1 value;
        // Value: 1 tag, 2 simple_value (float), 4 image; Image: 1 height, 2 width, 4 encoded_image_string.
        private static Event ParseEvent(byte[] data)
        {
            var e = new Event(0, 0, null, null, 0, 0, 0, null);
            foreach (var (field, value, bytes) in Fields(data))
                e = field switch
                {
                    1 => e with { WallTime = BitConverter.Int64BitsToDouble((long)value) },
                    2 => e with { Step = (long)value },
                    3 => e with { FileVersion = Encoding.UTF8.GetString(bytes!) },
                    5 => Fields(bytes!).Where(f => f.Field == 1).Select(f => Value(e, f.Bytes!)).First(),
                    _ => e,
                };
            return e;
        }

        private static Event Value(Event e, byte[] value)
        {
            foreach (var (field, number, bytes) in Fields(value))
                e = field switch
                {
                    1 => e with { Tag = Encoding.UTF8.GetString(bytes!) },
                    2 => e with { Value = BitConverter.Int32BitsToSingle((int)number) },
                    4 => Fields(bytes!).Aggregate(e, (image, f) => f.Field switch
                    {
                        1 => image with { Height = (int)f.Value },
                        2 => image with { Width = (int)f.Value },
                        4 => image with { Png = f.Bytes },
                        _ => image,
                    }),
                    _ => e,
                };
            return e;
        }

        /// <summary>A message's fields: number, then the value (varint, fixed64 or fixed32) or the bytes (length-delimited).</summary>
        private static IEnumerable<(int Field, ulong Value, byte[]? Bytes)> Fields(byte[] data)
        {
            var fields = new List<(int, ulong, byte[]?)>();
            int at = 0;
            while (at < data.Length)
            {
                ulong key = Varint(data, ref at);
                int field = (int)(key >> 3);
                switch (key & 7)
                {
                    case 0: fields.Add((field, Varint(data, ref at), null)); break;
                    case 1: fields.Add((field, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(at)), null)); at += 8; break;
                    case 2:
                        int length = (int)Varint(data, ref at);
                        fields.Add((field, 0, data[at..(at + length)]));
                        at += length;
                        break;
                    case 5: fields.Add((field, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at)), null)); at += 4; break;
                    default: throw new InvalidDataException($"wire type {key & 7} at byte {at}");
                }
            }
            return fields;
        }

        private static ulong Varint(byte[] data, ref int at)
        {
            ulong value = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = data[at++];
                value |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return value;
            }
        }

        /// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) bit by bit, rotated right by 15 and offset by 0xa282ead8.</summary>
        private static uint MaskedCrc(ReadOnlySpan<byte> data)
        {
            uint crc = 0xFFFFFFFF;
            foreach (byte b in data)
            {
                crc ^= b;
                for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
            }
            crc = ~crc;
            return ((crc >> 15) | (crc << 17)) + 0xa282ead8;
        }
    }
}
