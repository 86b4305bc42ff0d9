using System.Runtime.CompilerServices;
using Ddpm.Models;
using Ddpm.Specs;

namespace Ddpm.Cli.Tests;

/// <summary>A 2-stage U-Net on 8x8 images: small enough to train 30 steps in a test.</summary>
[UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4)]
[Attention(Heads = 2, DimHead = 8)]
public partial class TinyUNet;

/// <summary>
/// TinyUNet's shape with the tutorial's attention of 4 heads x 32 channels: the reference PyTorch Unet fixes those (it takes
/// no heads argument), so this is the tiny model whose state dict equals ddpm_ref.Unet(dim=4, dim_mults=(1, 2), channels=1)'s
/// key for key and shape for shape (Fixtures/interop/make_fixtures.py). Dim 4 keeps the fixtures near 100 KB each.
/// </summary>
[UNet(Channels = 1, ImageSize = 8, Dim = 4, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4)]
[Attention(Heads = 4, DimHead = 32)]
public partial class TinyTutorialUNet;

/// <summary>TinyUNet made class-conditional on the synthetic data set's three shapes (vertical bar, horizontal bar, box).</summary>
[UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4, Classes = 3, ClassDropout = 0.2, Guidance = 2)]
[Attention(Heads = 2, DimHead = 8)]
public partial class TinyConditionalUNet;

[NoiseSchedule(ScheduleKind.Linear, Timesteps = 20, BetaStart = 1e-3, BetaEnd = 0.2)]
public static partial class TinySchedule;

internal static class TinyModelRegistration
{
    public static TrainingSpec Training => new()
    {
        Dataset = "synthetic", BatchSize = 16, Steps = 30, SampleEvery = 30, CheckpointEvery = 10, EmaDecay = 0.9, Seed = 3,
    };

    [ModuleInitializer]
    internal static void Register() =>
        ModelCatalog.Register(new ModelEntry("TinyUNet", "tiny.yaml", () => new TinyUNet(), TinySchedule.Diffusion, TinyUNet.Channels,
                                             TinyUNet.ImageSize, TinyUNet.ParameterCount, "tiny-test-hash", Training, TinyUNet.Stages));

    [ModuleInitializer]
    internal static void RegisterConditional() =>
        ModelCatalog.Register(new ModelEntry("TinyConditionalUNet", "tiny-conditional.yaml", () => new TinyConditionalUNet(), TinySchedule.Diffusion,
                                             TinyConditionalUNet.Channels, TinyConditionalUNet.ImageSize, TinyConditionalUNet.ParameterCount,
                                             "tiny-conditional-test-hash", Training, TinyConditionalUNet.Stages, TinyConditionalUNet.ClassConditioning));

    [ModuleInitializer]
    internal static void RegisterTutorialShaped() =>
        ModelCatalog.Register(new ModelEntry("TinyTutorialUNet", "tiny-tutorial.yaml", () => new TinyTutorialUNet(), TinySchedule.Diffusion,
                                             TinyTutorialUNet.Channels, TinyTutorialUNet.ImageSize, TinyTutorialUNet.ParameterCount,
                                             "tiny-tutorial-test-hash", Training, TinyTutorialUNet.Stages));
}
