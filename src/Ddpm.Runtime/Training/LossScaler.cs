using System.Globalization;
using static TorchSharp.torch;

namespace Ddpm.Training;

/// <summary>
/// Dynamic loss scaling for float16 training (Micikevicius et al. 2018, "Mixed Precision Training"; the scheme of
/// PyTorch's GradScaler): the loss is multiplied by <see cref="Scale"/> before backward so small float16 gradients do not
/// flush to zero, the gradients are divided by it again before clipping, and a step whose gradients overflowed
/// (inf or NaN) is skipped and halves the scale. After <see cref="GrowthInterval"/> good steps in a row the scale doubles.
/// </summary>
/// <remarks>
/// The state machine runs on the host from one fact per step (were the unscaled gradients finite?), which the trainer
/// reads with the loss in its one device-to-host transfer; the scaling itself is a multiply by a host scalar, so it
/// adds no synchronisation.
/// </remarks>
public sealed class LossScaler
{
    /// <summary>GradScaler's defaults: 2^16, x2 after 2000 good steps, x0.5 after an overflow.</summary>
    public const double DefaultInitialScale = 65536.0;
    /// <summary>Good steps in a row before the scale grows (GradScaler's 2000).</summary>
    public const int DefaultGrowthInterval = 2000;

    /// <summary>Creates a scaler starting at <paramref name="initialScale"/>.</summary>
    /// <param name="initialScale">The first loss scale; positive and finite.</param>
    /// <param name="growthFactor">Factor applied after <paramref name="growthInterval"/> good steps; finite and &gt; 1.</param>
    /// <param name="backoffFactor">Factor applied after an overflow; in (0, 1).</param>
    /// <param name="growthInterval">Good steps in a row before the scale grows; &gt;= 1.</param>
    public LossScaler(double initialScale = DefaultInitialScale, double growthFactor = 2.0, double backoffFactor = 0.5,
                      int growthInterval = DefaultGrowthInterval)
    {
        if (!(initialScale > 0) || !double.IsFinite(initialScale))
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, "The initial loss scale must be a positive finite number.");
        if (!(growthFactor > 1) || !double.IsFinite(growthFactor))
            throw new ArgumentOutOfRangeException(nameof(growthFactor), growthFactor, "The growth factor must be a finite number > 1.");
        if (!(backoffFactor > 0 && backoffFactor < 1))
            throw new ArgumentOutOfRangeException(nameof(backoffFactor), backoffFactor, "The backoff factor must be in (0, 1).");
        if (growthInterval < 1)
            throw new ArgumentOutOfRangeException(nameof(growthInterval), growthInterval, "The growth interval must be >= 1.");
        Scale = initialScale;
        GrowthFactor = growthFactor;
        BackoffFactor = backoffFactor;
        GrowthInterval = growthInterval;
    }

    /// <summary>The factor the loss is multiplied by before backward.</summary>
    public double Scale { get; private set; }
    /// <summary>Good steps since the last overflow or growth.</summary>
    public int GoodSteps { get; private set; }
    /// <summary>Factor the scale is multiplied by after <see cref="GrowthInterval"/> good steps (default 2).</summary>
    public double GrowthFactor { get; }
    /// <summary>Factor the scale is multiplied by after a step whose gradients overflowed (default 0.5).</summary>
    public double BackoffFactor { get; }
    /// <summary>Good steps in a row before the scale grows (default <see cref="DefaultGrowthInterval"/>).</summary>
    public int GrowthInterval { get; }

    /// <summary>loss * <see cref="Scale"/>, the tensor to call backward on.</summary>
    public Tensor ScaleLoss(Tensor loss) => loss.mul(Scale);

    /// <summary>Divides every gradient by <see cref="Scale"/> in place (before clipping, so the clip sees true gradients).</summary>
    public void Unscale(IEnumerable<Tensor?> gradients)
    {
        double inverse = 1.0 / Scale;
        using var _ = no_grad();
        foreach (var gradient in gradients)
            gradient?.mul_(inverse);
    }

    /// <summary>
    /// Records one step: <paramref name="gradientsFinite"/> false halves the scale and restarts the count, and the step must
    /// be skipped; true counts a good step and grows the scale after <see cref="GrowthInterval"/> of them. Returns whether
    /// the optimiser should step.
    /// </summary>
    public bool Update(bool gradientsFinite)
    {
        if (!gradientsFinite)
        {
            Scale *= BackoffFactor;
            GoodSteps = 0;
            return false;
        }
        if (++GoodSteps >= GrowthInterval)
        {
            double grown = Scale * GrowthFactor;
            if (double.IsFinite(grown)) Scale = grown; // a float32 loss times an infinite scale would be inf or NaN
            GoodSteps = 0;
        }
        return true;
    }

    /// <summary>Continues from a checkpoint's scale and good-step count.</summary>
    public void Restore(double scale, int goodSteps)
    {
        if (!(scale > 0) || !double.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The loss scale must be a positive finite number.");
        if (goodSteps < 0 || goodSteps >= GrowthInterval)
            throw new ArgumentOutOfRangeException(nameof(goodSteps), goodSteps, $"The good-step count must be in [0, {GrowthInterval}).");
        Scale = scale;
        GoodSteps = goodSteps;
    }

    /// <summary>The scale and the good-step count, e.g. "loss scale 65536 (12/2000 good steps)".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"loss scale {Scale:G6} ({GoodSteps}/{GrowthInterval} good steps)");
}
