using Ddpm.Schedules;
using Ddpm.Training;
using static Ddpm.Runtime.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

[Collection(TrainingCollection.Name)]
public sealed class CheckpointTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData(5)] // mid-epoch (4 batches per epoch): the loader restarts at batch 1 of epoch 1
    [InlineData(4)] // exactly at the end of epoch 0
    public void Resumed_run_reproduces_the_uninterrupted_loss_curve(int split)
    {
        using var dir = new TempDir();
        var spec = Spec(steps: 10);

        var straight = new List<double>();
        using var uninterrupted = UNetTrainer(spec, straight);
        uninterrupted.Train();

        string path = dir.File("run.ckpt");
        var firstPart = new List<double>();
        using (var interrupted = UNetTrainer(spec, firstPart))
        {
            interrupted.TrainUntil(untilStep: split);
            interrupted.SaveCheckpoint(path);
            interrupted.Model.Dispose();
        }
        Assert.Equal(straight.Take(split), firstPart);

        // Fresh objects with other initial weights: everything must come from the checkpoint.
        var secondPart = new List<double>();
        using var resumed = UNetTrainer(spec, secondPart, modelSeed: 99);
        resumed.LoadCheckpoint(path);
        Assert.Equal(split, resumed.Step);
        resumed.Train();

        Assert.Equal(straight.Skip(split), secondPart); // bit for bit
        AssertSameState(uninterrupted.Model, resumed.Model);
        AssertSameState(uninterrupted.EmaModel!, resumed.EmaModel!);
        uninterrupted.Model.Dispose();
        resumed.Model.Dispose();
    }

    [Fact]
    public void Checkpoint_is_written_atomically_and_round_trips()
    {
        using var dir = new TempDir();
        string path = dir.File("a.ckpt");
        var spec = Spec(steps: 3);
        using var trainer = UNetTrainer(spec, new List<double>(), checkpointDue: r => r.Trainer.SaveCheckpoint(path));
        trainer.Train();
        Assert.True(File.Exists(path));
        Assert.Equal(new[] { "a.ckpt" }, Directory.GetFiles(dir.Path).Select(Path.GetFileName));

        using var checkpoint = Checkpoint.Load(path);
        Assert.Equal(3, checkpoint.Step);
        Assert.Equal(0, checkpoint.Epoch);
        Assert.Equal(3, checkpoint.Batch);
        Assert.Equal(trainer.Diffusion.Tables.Fingerprint, checkpoint.ScheduleFingerprint);
        Assert.Equal("training:\n  steps: 3\n", checkpoint.SpecText);
        Assert.Equal(path, checkpoint.Source);
        Assert.Equal(get_num_threads(), checkpoint.TorchThreads);
        Assert.NotNull(checkpoint.Ema);
        Assert.Equal(trainer.Model.state_dict().Keys, checkpoint.Model.Select(p => p.Name));
        trainer.Model.Dispose();
    }

    [Fact]
    public void Truncated_or_corrupt_files_give_a_clear_error_naming_the_file()
    {
        using var dir = new TempDir();
        string path = dir.File("good.ckpt");
        using (var trainer = UNetTrainer(Spec(steps: 1), new List<double>()))
        {
            trainer.Train();
            trainer.SaveCheckpoint(path);
            trainer.Model.Dispose();
        }
        byte[] bytes = File.ReadAllBytes(path);

        string truncated = dir.File("truncated.ckpt");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(truncated));
        Assert.Contains(truncated, e.Message);
        Assert.Contains("truncated", e.Message);

        string flipped = dir.File("flipped.ckpt");
        var corrupt = (byte[])bytes.Clone();
        corrupt[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(flipped, corrupt);
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(flipped));
        Assert.Contains(flipped, e.Message);
        Assert.Contains("checksum", e.Message);

        string foreign = dir.File("foreign.ckpt");
        File.WriteAllText(foreign, "not a checkpoint at all");
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(foreign));
        Assert.Contains(foreign, e.Message);
        Assert.Contains("not a Ddpm checkpoint", e.Message);

        string future = dir.File("future.ckpt");
        var newer = (byte[])bytes.Clone();
        BitConverter.TryWriteBytes(newer.AsSpan(8, 4), Checkpoint.FormatVersion + 1);
        File.WriteAllBytes(future, newer);
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(future));
        Assert.Contains($"format version {Checkpoint.FormatVersion + 1}", e.Message);

        e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(dir.File("missing.ckpt")));
        Assert.Contains("missing.ckpt", e.Message);
    }

    [Fact]
    public void Schedule_fingerprint_mismatch_is_rejected_naming_both()
    {
        using var dir = new TempDir();
        string path = dir.File("linear.ckpt");
        string linear;
        using (var trainer = UNetTrainer(Spec(steps: 1), new List<double>()))
        {
            trainer.Train();
            trainer.SaveCheckpoint(path);
            linear = trainer.Diffusion.Tables.Fingerprint;
            trainer.Model.Dispose();
        }
        var cosine = MakeDiffusion(ScheduleKind.Cosine);
        using var other = UNetTrainer(Spec(steps: 1), new List<double>(), diffusion: cosine);
        var e = Assert.Throws<CheckpointException>(() => other.LoadCheckpoint(path));
        Assert.Contains(linear, e.Message);
        Assert.Contains(cosine.Tables.Fingerprint, e.Message);
        Assert.Contains(path, e.Message);
        Assert.Equal(0, other.Step);
        other.Model.Dispose();
    }

    [Fact]
    public void State_dict_mismatch_names_the_first_differing_key()
    {
        using var dir = new TempDir();
        string path = dir.File("unet.ckpt");
        using (var trainer = UNetTrainer(Spec(steps: 1), new List<double>()))
        {
            trainer.Train();
            trainer.SaveCheckpoint(path);
            trainer.Model.Dispose();
        }
        var spec = Spec(steps: 1);
        spec.EmaDecay = 0;
        using var scalar = new ScalarTestModel(0f);
        using var other = new Trainer(scalar, MakeDiffusion(), Trainer.CreateLoader(Bars(), spec), spec);
        var e = Assert.Throws<CheckpointException>(() => other.LoadCheckpoint(path));
        Assert.Contains("key 'w'", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Divergence_throws_and_leaves_the_last_checkpoint_untouched()
    {
        using var dir = new TempDir();
        string path = dir.File("run.ckpt");
        byte[]? lastWritten = null;
        long lastStep = 0;
        var spec = Spec(steps: 10);
        spec.CheckpointEvery = 2;
        // The model's output turns NaN from the 6th forward pass on: steps 2 and 4 are checkpointed, step 6 diverges.
        using var trainer = UNetTrainer(spec, new List<double>(), wrap: m => new NanInjectingModel(m, nanFromCall: 6),
            checkpointDue: r => { r.Trainer.SaveCheckpoint(path); lastWritten = File.ReadAllBytes(path); lastStep = r.Step; });

        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Train());
        Assert.Equal(6, e.Step);
        Assert.Equal("the loss", e.Quantity);
        Assert.Contains("step 6", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.Equal(4, lastStep);
        Assert.Equal(lastWritten, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".tmp"));
        Assert.Throws<InvalidOperationException>(() => trainer.TrainStep());
        using var checkpoint = Checkpoint.Load(path);
        Assert.Equal(4, checkpoint.Step);
        trainer.Model.Dispose();
    }

    [Fact]
    public void Huge_learning_rate_diverges_without_overwriting_the_last_good_checkpoint()
    {
        using var dir = new TempDir();
        string path = dir.File("run.ckpt");
        byte[]? lastWritten = null;
        var spec = Spec(steps: 50, lr: 1e30);
        spec.GradClip = 0;
        spec.CheckpointEvery = 1;
        using var trainer = UNetTrainer(spec, new List<double>(),
            checkpointDue: r => { r.Trainer.SaveCheckpoint(path); lastWritten = File.ReadAllBytes(path); });

        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Train());
        output.WriteLine(e.Message);
        Assert.True(e.Step < 50);
        Assert.False(double.IsFinite(e.Value));
        // Step 1 is finite (its huge update still fits in float32) and is checkpointed; the next loss is NaN.
        Assert.NotNull(lastWritten);
        Assert.Equal(lastWritten, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".tmp"));
        trainer.Model.Dispose();
    }

    [Fact]
    public void Non_finite_weights_are_never_checkpointed()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.ckpt");
        var spec = Spec(steps: 1);
        spec.EmaDecay = 0;
        using var model = new ScalarTestModel(float.NaN);
        using var trainer = new Trainer(model, MakeDiffusion(), Trainer.CreateLoader(Bars(), spec), spec);
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.SaveCheckpoint(path));
        Assert.Equal("a weight", e.Quantity);
        Assert.False(File.Exists(path));
        Assert.False(File.Exists(path + ".tmp"));
    }

    private static void AssertSameState(nn.Module expected, nn.Module actual)
    {
        var a = expected.state_dict();
        var b = actual.state_dict();
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, value) in a)
        {
            using var same = value.eq(b[name]).all();
            Assert.True(same.item<bool>(), $"'{name}' differs.");
        }
    }
}
