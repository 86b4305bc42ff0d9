using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Conditioning;

/// <summary>
/// A class-conditional model seen by the samplers as an ordinary (x_t, t) -> prediction module, with fixed labels and
/// classifier-free guidance (Ho and Salimans 2022, eq. 6, written with s = 1 + w): prediction = uncond + s (cond - uncond).
/// eps, x_0 and v are all affine in eps for a given x_t and t, so guiding the model's output guides eps whatever the
/// objective. The conditional and the null-class predictions come from one model call on a doubled batch.
/// </summary>
/// <remarks>
/// It holds the model without registering it: disposing this wrapper leaves the model alone, and it has no parameters
/// of its own (pass the model's device to the samplers). Put the model itself in eval mode.
/// </remarks>
internal sealed class GuidedDenoiser : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly IClassConditional model;
    private readonly Tensor labels;
    private readonly double guidance;

    /// <param name="model">The conditional model.</param>
    /// <param name="labels">int64 [B] on the model's device: the class of each image of the batch the samplers will pass.</param>
    /// <param name="guidance">The guidance scale s.</param>
    public GuidedDenoiser(IClassConditional model, Tensor labels, double guidance) : base(nameof(GuidedDenoiser))
    {
        this.model = model;
        this.labels = labels;
        this.guidance = guidance;
    }

    public override Tensor forward(Tensor images, Tensor timesteps)
    {
        if (guidance == 1.0) return model.forward(images, timesteps, labels);
        int nullClass = model.Conditioning.NullClass;
        using var scope = NewDisposeScope();
        using var nullLabels = full_like(labels, nullClass);
        if (guidance == 0.0) return model.forward(images, timesteps, nullLabels).MoveToOuterDisposeScope();
        var both = model.forward(cat(new[] { images, images }, 0), cat(new[] { timesteps, timesteps }, 0), cat(new[] { labels, nullLabels }, 0));
        var halves = both.chunk(2, 0);
        var (conditional, unconditional) = (halves[0], halves[1]);
        return unconditional.add(conditional.sub(unconditional), alpha: guidance).MoveToOuterDisposeScope();
    }

    /// <summary>Nothing to register: the model stays its owner's (TorchSharp would otherwise register the field and dispose it with this wrapper).</summary>
    protected override void RegisterComponents() { }
}
