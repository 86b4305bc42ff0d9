using Ddpm.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Conditioning;

/// <summary>
/// How a class-conditional model was declared: its classes, the null class that stands for "no class" (index
/// <see cref="Classes"/> of the class embedding), the share of training labels dropped to it, and the default
/// guidance scale of sampling (classifier-free guidance, Ho and Salimans 2022).
/// </summary>
/// <param name="Classes">Classes of the data, at least 2; labels are 0 .. Classes - 1.</param>
/// <param name="Dropout">Share of training labels replaced by the null class, in [0, 1).</param>
/// <param name="Guidance">The guidance scale sampling uses unless told otherwise: 1 = the conditional model alone.</param>
public sealed record ClassConditioning(int Classes, double Dropout, double Guidance)
{
    /// <summary>The label of the unconditional prediction: one past the last class.</summary>
    public int NullClass => Classes;

    /// <summary>Whether guidance at <paramref name="scale"/> is usable: the null class must have been trained unless the scale is 1.</summary>
    public bool CanGuide(double scale) => !ClassRules.GuidanceNeedsDropout(scale, Dropout);

    /// <summary>
    /// The training labels with each replaced by the null class with probability <see cref="Dropout"/>: one uniform draw per
    /// label from <paramref name="generator"/> (made on the CPU like every training draw, so the run is the same on every device).
    /// Draws nothing when the dropout is 0.
    /// </summary>
    public Tensor DropLabels(Tensor labels, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (Dropout <= 0) return labels.alias();
        using var scope = NewDisposeScope();
        var draw = Ddpm.Diffusion.Devices.Rand(new[] { labels.shape[0] }, ScalarType.Float32, labels.device, generator);
        return where(draw < Dropout, full_like(labels, NullClass), labels).MoveToOuterDisposeScope();
    }
}

/// <summary>A module that predicts given class labels: what the generator emits for a model declared with classes.</summary>
public interface IClassConditional
{
    /// <summary>The model's classes, null class, label dropout and default guidance.</summary>
    ClassConditioning Conditioning { get; }

    /// <summary>
    /// The prediction for <paramref name="images"/> [B, C, H, W] at <paramref name="timesteps"/> [B] given <paramref name="labels"/>
    /// [B] (int64, 0 .. Classes, Classes = the null class); null labels every image with the null class.
    /// </summary>
    Tensor forward(Tensor images, Tensor timesteps, Tensor? labels);
}
