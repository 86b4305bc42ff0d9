using Ddpm.Diffusion;
using Ddpm.Interop;
using Ddpm.Models;
using Ddpm.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Onnx.Tests;

/// <summary>
/// Every kind of stage the generator accepts in one small model: 1 to 3 ResNet blocks per stage, no, full and linear
/// attention in the down/up path, no mid attention, RGB, 2 GroupNorm groups, 2 heads of 8.
/// </summary>
[UNet(Channels = 3, ImageSize = 16, Dim = 8, DimMults = new[] { 1, 2, 2 }, ResnetBlockGroups = 2)]
[DownStage(0, Blocks = 1, Attention = AttentionKind.None)]
[DownStage(1, Blocks = 3, Attention = AttentionKind.Full)]
[DownStage(2, Blocks = 2, Attention = AttentionKind.Linear)]
[MidStage(Attention = AttentionKind.None)]
[Attention(Heads = 2, DimHead = 8)]
public partial class MixedUNet;

/// <summary>A 2-stage gray U-Net on 8x8 images with linear attention and full mid attention: fast enough for 50-step chains.</summary>
[UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4)]
[Attention(Heads = 2, DimHead = 8)]
public partial class SmallUNet;

/// <summary>SmallUNet made class-conditional: 3 classes, 20% of labels dropped while training, guidance 2 by default.</summary>
[UNet(Channels = 1, ImageSize = 8, Dim = 8, DimMults = new[] { 1, 2 }, ResnetBlockGroups = 4, Classes = 3, ClassDropout = 0.2, Guidance = 2)]
[Attention(Heads = 2, DimHead = 8)]
public partial class SmallConditionalUNet;

/// <summary>Eps prediction, linear betas, T = 50.</summary>
[NoiseSchedule(ScheduleKind.Linear, Timesteps = 50, BetaStart = 1e-3, BetaEnd = 0.2)]
public static partial class EpsSchedule;

/// <summary>v prediction under the cosine schedule, x_0 clipped.</summary>
[NoiseSchedule(ScheduleKind.Cosine, Timesteps = 50, Objective = Objective.V, ClipX0 = true)]
public static partial class VClipSchedule;

/// <summary>x_0 prediction, quadratic betas, dynamic thresholding at the 0.9 quantile.</summary>
[NoiseSchedule(ScheduleKind.Quadratic, Timesteps = 40, BetaStart = 1e-3, BetaEnd = 0.1, Objective = Objective.X0, DynamicThreshold = 0.9)]
public static partial class X0ThresholdSchedule;

internal static class TestModels
{
    public static ModelEntry Entry(string name, Func<nn.Module<Tensor, Tensor, Tensor>> create, GaussianDiffusion diffusion, int channels, int size,
                                   Ddpm.Conditioning.ClassConditioning? conditioning = null) =>
        new(name, name + ".yaml", create, diffusion, channels, size, 0, "test-hash", new TrainingSpec { Dataset = "synthetic" }, Conditioning: conditioning);

    public static ModelEntry SmallConditional(GaussianDiffusion diffusion) =>
        Entry("SmallConditionalUNet", () => new SmallConditionalUNet(), diffusion, SmallConditionalUNet.Channels, SmallConditionalUNet.ImageSize,
              SmallConditionalUNet.ClassConditioning);

    public static ModelEntry Mixed(GaussianDiffusion? diffusion = null) =>
        Entry("MixedUNet", () => new MixedUNet(), diffusion ?? EpsSchedule.Diffusion, MixedUNet.Channels, MixedUNet.ImageSize);

    public static ModelEntry Small(GaussianDiffusion diffusion) =>
        Entry("SmallUNet", () => new SmallUNet(), diffusion, SmallUNet.Channels, SmallUNet.ImageSize);

    /// <summary>
    /// The model with weights from <paramref name="seed"/>, and every GroupNorm's affine moved off its initial ones and zeros
    /// (to 1 + 0.2 N(0, 1) and 0.2 N(0, 1)), so the export's scale and shift of each norm are checked too.
    /// </summary>
    public static nn.Module<Tensor, Tensor, Tensor> Seeded(ModelEntry entry, long seed)
    {
        manual_seed(seed);
        var model = entry.CreateModel();
        model.eval();
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (!name.Contains("norm.") && !name.Contains("to_out.1.")) continue;
            using var scope = NewDisposeScope();
            var noise = randn(parameter.shape).mul_(0.2);
            parameter.copy_(name.EndsWith(".weight", StringComparison.Ordinal) ? noise.add_(1.0) : noise);
        }
        return model;
    }

    /// <summary>Exports <paramref name="model"/> to a temporary .onnx file (deleted with the returned handle).</summary>
    public static TempOnnx Export(nn.Module<Tensor, Tensor, Tensor> model, ModelEntry entry)
    {
        string folder = Directory.CreateTempSubdirectory("ddpm-onnx-").FullName;
        string path = Path.Combine(folder, entry.Name + ".onnx");
        OnnxExport.Write(model, entry, path);
        return new TempOnnx(folder, path);
    }
}

/// <summary>An exported file in its own temporary folder.</summary>
internal sealed record TempOnnx(string Folder, string Path) : IDisposable
{
    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

/// <summary>Replays a TorchSharp generator's normal draws, so Ddpm.Onnx's samplers see the noise GaussianDiffusion's do.</summary>
internal sealed class TorchNoise(ulong seed) : IGaussianNoise, IDisposable
{
    private readonly Generator generator = new(seed);

    public void Fill(Span<float> destination)
    {
        using var values = randn(new long[] { destination.Length }, ScalarType.Float32, generator: generator);
        values.data<float>().ToArray().AsSpan().CopyTo(destination);
    }

    public void Dispose() => generator.Dispose();
}

internal static class ModelLibraryLoader
{
    /// <summary>The shipped models register from Ddpm.Models' module initializer: load it before any test looks them up.</summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Load() => ModelLibrary.Load();
}
