using Ddpm.Conditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Diffusion;

/// <summary>
/// Runs a noise model in a lower precision (bfloat16 on CPUs with AMX or AVX-512-BF16, bfloat16 or float16 on CUDA) while the
/// sampler keeps x_t and all of the schedule arithmetic in float32: inputs are cast down and the
/// predicted noise is cast back up, so rounding does not accumulate over the reverse chain.
/// </summary>
public class PrecisionCast : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor, Tensor> inner;
    private readonly ScalarType dtype;

    /// <summary>The compute dtype.</summary>
    protected ScalarType Dtype => dtype;

    /// <summary>Converts <paramref name="model"/> itself to <paramref name="dtype"/> (pass a copy to keep a float32 one).</summary>
    public PrecisionCast(nn.Module<Tensor, Tensor, Tensor> model, ScalarType dtype) : base(nameof(PrecisionCast))
    {
        inner = model;
        this.dtype = dtype;
        inner.to(dtype);
        register_module("inner", inner);
    }

    /// <summary>The model as it is for fp32, else wrapped to compute in <paramref name="precision"/> (converting the model itself).
    /// A class-conditional model stays one (<see cref="IClassConditional"/>): its labels pass through unchanged.</summary>
    public static nn.Module<Tensor, Tensor, Tensor> Wrap(nn.Module<Tensor, Tensor, Tensor> model, string precision) =>
        Parse(precision) is var dtype && dtype == ScalarType.Float32 ? model
        : model is IClassConditional conditional ? new ConditionalPrecisionCast(model, conditional, dtype)
        : new PrecisionCast(model, dtype);

    /// <summary>The dtype named by a spec's or the command line's precision: fp32, bf16 or fp16.</summary>
    public static ScalarType Parse(string precision) => precision?.ToLowerInvariant() switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        "fp16" => ScalarType.Float16,
        _ => throw new ArgumentException($"precision must be fp32, bf16 or fp16, got '{precision}'.", nameof(precision)),
    };

    /// <summary>Runs the wrapped model in the low precision and returns its output in the dtype of <paramref name="x"/>.</summary>
    /// <param name="x">Noisy images x_t [B, C, H, W], usually float32.</param>
    /// <param name="timesteps">Timesteps [B], passed through unchanged.</param>
    /// <returns>The model's prediction, shaped like <paramref name="x"/> and in its dtype.</returns>
    public override Tensor forward(Tensor x, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        return inner.forward(x.to(dtype), timesteps).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Does nothing: the wrapped model is registered explicitly, as <c>inner</c>, in the constructor.</summary>
    protected override void RegisterComponents() { }
}

/// <summary><see cref="PrecisionCast"/> of a class-conditional model: the labels pass through, the images and the output are cast.</summary>
internal sealed class ConditionalPrecisionCast(nn.Module<Tensor, Tensor, Tensor> model, IClassConditional conditional, ScalarType dtype)
    : PrecisionCast(model, dtype), IClassConditional
{
    public ClassConditioning Conditioning => conditional.Conditioning;

    public Tensor forward(Tensor images, Tensor timesteps, Tensor? labels)
    {
        using var scope = NewDisposeScope();
        return conditional.forward(images.to(Dtype), timesteps, labels).to(images.dtype).MoveToOuterDisposeScope();
    }
}
