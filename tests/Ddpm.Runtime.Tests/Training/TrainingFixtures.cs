using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Schedules;
using Ddpm.Specs;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>
/// The training tests run alone (not alongside any other test class): they measure the process's RSS,
/// change torch's thread count, and compare loss curves bit for bit.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TrainingCollection
{
    public const string Name = "Training (serial)";
}

/// <summary>Reports synchronously on the training thread (System.Progress would post to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

internal static class TrainingFixtures
{
    public const int Timesteps = 100;

    /// <summary>64 images of 1x8x8: each of the 8 horizontal and 8 vertical one-pixel bars, 4 times.</summary>
    public static ImageSet Bars()
    {
        const int size = 8, patterns = 2 * size, copies = 4;
        var pixels = new byte[patterns * copies * size * size];
        for (int i = 0; i < patterns * copies; i++)
        {
            int pattern = i % patterns, line = pattern % size;
            bool horizontal = pattern < size;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    if ((horizontal ? y : x) == line)
                        pixels[i * size * size + y * size + x] = 255;
        }
        return new ImageSet(pixels, patterns * copies, 1, size, size);
    }

    public static GaussianDiffusion MakeDiffusion(ScheduleKind kind = ScheduleKind.Linear) =>
        new(ScheduleMath.Tables(kind, Timesteps));

    public static TrainingSpec Spec(int steps, long seed = 1, double lr = 2e-3) => new()
    {
        Dataset = "synthetic",
        BatchSize = 16,
        Steps = steps,
        Loss = LossKind.Huber,
        Optimizer = new OptimizerSpec { Lr = lr },
        WarmupSteps = 0,
        GradClip = 1.0,
        EmaDecay = 0.9,
        RandomFlip = true,
        SampleEvery = 0,
        CheckpointEvery = 0,
        Seed = seed,
    };

    /// <summary>A trainer on the bars data with a fresh <see cref="SmallTestUNet"/>; losses are appended to <paramref name="losses"/>.</summary>
    public static Trainer UNetTrainer(TrainingSpec spec, List<double> losses, long modelSeed = 7,
                                      Action<CheckpointRequest>? checkpointDue = null, Func<nn.Module<Tensor, Tensor, Tensor>, nn.Module<Tensor, Tensor, Tensor>>? wrap = null,
                                      GaussianDiffusion? diffusion = null)
    {
        nn.Module<Tensor, Tensor, Tensor> model = new SmallTestUNet(modelSeed);
        if (wrap is not null) model = wrap(model);
        var callbacks = new TrainingCallbacks
        {
            Progress = new SyncProgress<TrainingProgress>(p => losses.Add(p.Loss)),
            CheckpointDue = checkpointDue,
        };
        return new Trainer(model, diffusion ?? MakeDiffusion(), Trainer.CreateLoader(Bars(), spec), spec,
                           () => wrap is null ? new SmallTestUNet(modelSeed) : wrap(new SmallTestUNet(modelSeed)), callbacks, "training:\n  steps: " + spec.Steps + "\n");
    }

    /// <summary>Trains <paramref name="steps"/> steps from scratch and returns the losses.</summary>
    public static List<double> Losses(TrainingSpec spec, long modelSeed = 7)
    {
        var losses = new List<double>();
        using var trainer = UNetTrainer(spec, losses, modelSeed);
        trainer.Train();
        trainer.Model.Dispose();
        return losses;
    }

    /// <summary>Same shape and the same values, bit for bit (TorchSharp's equal is elementwise).</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        using var same = a.eq(b);
        return a.shape.SequenceEqual(b.shape) && same.all().item<bool>();
    }

    /// <summary>A fresh temporary directory, deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() => System.IO.Directory.CreateDirectory(Path);
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ddpm-training-" + Guid.NewGuid().ToString("N"));
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose()
        {
            try { System.IO.Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
