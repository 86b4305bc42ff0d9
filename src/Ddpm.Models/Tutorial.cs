namespace Ddpm.Models;

/// <summary>
/// The U-Net of "The Annotated Diffusion Model" for 28x28 Fashion-MNIST, declared with attributes: the same module as
/// specs/fashion-mnist.yaml's FashionMnistUNet (same keys, weights from the same seed, architecture hash), which the
/// tests check, so both front ends stay equivalent. Naming its schedule puts it in the model catalog: `ddpm train TutorialUNet`.
/// </summary>
[UNet(Channels = 1, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 }, ResnetBlockGroups = 4, Schedule = typeof(TutorialSchedule))]
[DownStage(0, Attention = AttentionKind.Linear)]
[DownStage(1, Attention = AttentionKind.Linear)]
[DownStage(2, Attention = AttentionKind.Linear)]
[MidStage(Attention = AttentionKind.Full)]
[Attention(Heads = 4, DimHead = 32)]
public partial class TutorialUNet;

/// <summary>The tutorial's schedule: linear betas from 1e-4 to 0.02 over 300 steps.</summary>
[NoiseSchedule(ScheduleKind.Linear, Timesteps = 300, BetaStart = 1e-4, BetaEnd = 0.02)]
public static partial class TutorialSchedule;
