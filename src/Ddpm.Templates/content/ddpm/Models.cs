using Ddpm;

namespace MyDiffusion;

// The other way to declare a model: attributes on a partial class. The generator fills in the class (a TorchSharp
// module with one typed field per block), and the schedule class gets its tables and samplers. Naming the schedule
// puts the model in the catalog, so DiffusionModel.Create<MyDiffusionSmallUNet>() and the ddpm tool find it.
[UNet(Channels = 1, ImageSize = 28, Dim = 16, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4,
      Schedule = typeof(MyDiffusionSmallSchedule))]
[DownStage(0, Attention = AttentionKind.Linear)]
[DownStage(1, Attention = AttentionKind.Linear)]
[MidStage(Attention = AttentionKind.Full)]
[Attention(Heads = 2, DimHead = 16)]
public partial class MyDiffusionSmallUNet;

[NoiseSchedule(ScheduleKind.Cosine, Timesteps = 300, Objective = Objective.V)]
public static partial class MyDiffusionSmallSchedule;
