namespace Ddpm.Evaluation;

/// <summary>
/// How the feature net is trained. Part of a cached net's identity: a cache written with other options is retrained.
/// </summary>
/// <param name="Epochs">Passes over the training split.</param>
/// <param name="BatchSize">Images per Adam step.</param>
/// <param name="LearningRate">Adam's peak learning rate; it follows a half cosine to zero over the run.</param>
/// <param name="Seed">Seeds the initial weights, the shuffles and the flips.</param>
public sealed record FeatureNetOptions(int Epochs = 4, int BatchSize = 128, double LearningRate = 2e-3, long Seed = 0)
{
    /// <summary>4 epochs of batches of 128, learning rate 2e-3, seed 0.</summary>
    public static FeatureNetOptions Default { get; } = new();

    /// <summary>Returns these options after checking their ranges.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Epochs or batch size below 1, or a learning rate that is not a positive finite number.</exception>
    public FeatureNetOptions Validated()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Epochs must be >= 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be a positive number.");
        return this;
    }
}
