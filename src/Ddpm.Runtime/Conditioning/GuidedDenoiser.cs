using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Conditioning;

/// <summary>
/// A class-conditional model seen by the samplers as an ordinary (x_t, t) -> prediction module, with fixed labels and
/// classifier-free guidance as <see cref="ClassifierFreeGuidance"/> (Ddpm.Core) defines it for both backends. The
/// conditional and the null-class predictions come from one model call on a doubled batch.
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
        var call = ClassifierFreeGuidance.Call(guidance);
        if (call == GuidanceCall.Conditional) return model.forward(images, timesteps, labels);
        int nullClass = model.Conditioning.NullClass;
        using var scope = NewDisposeScope();
        using var nullLabels = full_like(labels, nullClass);
        if (call == GuidanceCall.Unconditional) return model.forward(images, timesteps, nullLabels).MoveToOuterDisposeScope();
        var both = model.forward(cat(new[] { images, images }, 0), cat(new[] { timesteps, timesteps }, 0), cat(new[] { labels, nullLabels }, 0));
        var halves = both.chunk(2, 0);
        var (conditional, unconditional) = (halves[0], halves[1]);
        // ClassifierFreeGuidance.Combine's rule on tensors: uncond + s (cond - uncond).
        return unconditional.add(conditional.sub(unconditional), alpha: guidance).MoveToOuterDisposeScope();
    }

    /// <summary>Nothing to register: the model stays its owner's (TorchSharp would otherwise register the field and dispose it with this wrapper).</summary>
    protected override void RegisterComponents() { }
}
