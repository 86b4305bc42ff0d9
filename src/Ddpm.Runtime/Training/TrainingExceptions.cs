namespace Ddpm.Training;

/// <summary>
/// The loss (or the gradient norm, or a weight about to be checkpointed) became NaN or infinite.
/// Training stops before anything of that state is written, so the last checkpoint on disk is the last good one.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    public TrainingDivergedException(long step, string quantity, double value)
        : base($"Training diverged at step {step}: {quantity} is {value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}. " +
               "No checkpoint of this state was written; the last checkpoint on disk is the last good one. " +
               "Resume from it with a lower learning rate, a longer warm-up or gradient clipping.")
    {
        Step = step;
        Quantity = quantity;
        Value = value;
    }

    /// <summary>The 1-based step whose computation produced the non-finite value.</summary>
    public long Step { get; }
    /// <summary>What was non-finite: "loss", "gradient norm" or "weights".</summary>
    public string Quantity { get; }
    public double Value { get; }
}

/// <summary>A checkpoint file cannot be read, or does not fit the model, schedule or optimiser it is loaded into.</summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(string path, string problem, Exception? inner = null)
        : base($"Checkpoint '{path}': {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    public string Path { get; }
    public string Problem { get; }
}
