namespace Ddpm.Generators.Tests;

/// <summary>Declarations used across the generator tests.</summary>
public static class Sources
{
    public const string SeedModel = """
        using Ddpm;
        namespace Ddpm.Models;

        [UNet(Channels = 1, ImageSize = 28, Dim = 28, DimMults = new[] { 1, 2, 4 }, ResnetBlockGroups = 4)]
        [DownStage(0, Attention = AttentionKind.Linear)]
        [DownStage(1, Attention = AttentionKind.Linear)]
        [DownStage(2, Attention = AttentionKind.Linear)]
        [MidStage(Attention = AttentionKind.Full)]
        [Attention(Heads = 4, DimHead = 32)]
        public partial class FashionMnistUNet;
        """;

    public const string SeedSchedule = """
        using Ddpm;
        namespace Ddpm.Models;

        [NoiseSchedule(ScheduleKind.Linear, Timesteps = 300, BetaStart = 1e-4, BetaEnd = 0.02)]
        public static partial class FashionMnistSchedule;
        """;

    public const string FullAttentionModel = """
        using Ddpm;
        namespace Samples;

        [UNet(Channels = 3, ImageSize = 16, Dim = 16, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 8)]
        [DownStage(0, Attention = AttentionKind.Full)]
        [DownStage(1, Blocks = 1, Attention = AttentionKind.Full)]
        [Attention(Heads = 2, DimHead = 8)]
        public partial class AllFullAttentionUNet;
        """;
}
