namespace Ddpm.Training;

/// <summary>
/// The loss (or the gradient norm, or a weight about to be checkpointed) became NaN or infinite.
/// Training stops before anything of that state is written, so the last checkpoint on disk is the last good one.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception; the message names the step, the quantity and its value, and how to resume.</summary>
    /// <param name="step">The 1-based step that produced the value.</param>
    /// <param name="quantity">What was non-finite, as it reads in the message.</param>
    /// <param name="value">The value: NaN, positive or negative infinity.</param>
    public TrainingDivergedException(long step, string quantity, double value)
        : base($"{Describe(step, quantity, value)} No checkpoint of this state was written; any checkpoint written before it is the last good one: resume from it with {Remedy}.")
    {
        Summary = Describe(step, quantity, value);
        Step = step;
        Quantity = quantity;
        Value = value;
    }

    /// <summary>What helps a run that diverged, as the end of a sentence.</summary>
    internal const string Remedy = "a lower learning rate, a longer warm-up or gradient clipping";

    /// <summary>What happened, without advice: a caller that knows whether a checkpoint exists says what to do with <see cref="Remedy"/>.</summary>
    public string Summary { get; }

    private static string Describe(long step, string quantity, double value) =>
        $"Training diverged at step {step}: {quantity} is {value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}.";

    /// <summary>The 1-based step whose computation produced the non-finite value.</summary>
    public long Step { get; }
    /// <summary>What was non-finite: "loss", "gradient norm" or "weights".</summary>
    public string Quantity { get; }
    /// <summary>The non-finite value (NaN or an infinity).</summary>
    public double Value { get; }
}

/// <summary>A checkpoint file cannot be read, or does not fit the model, schedule or optimiser it is loaded into.</summary>
public sealed class CheckpointException : Exception
{
    /// <summary>Creates the exception with the message "Checkpoint '<paramref name="path"/>': <paramref name="problem"/>".</summary>
    /// <param name="path">The checkpoint file, or "&lt;memory&gt;" for one not read from a file.</param>
    /// <param name="problem">What is wrong, worded to follow the path.</param>
    /// <param name="inner">The I/O or parse error behind it, if any.</param>
    public CheckpointException(string path, string problem, Exception? inner = null)
        : base($"Checkpoint '{path}': {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The checkpoint file concerned (<see cref="Checkpoint.Source"/>).</summary>
    public string Path { get; }
    /// <summary>What is wrong with it, without the path.</summary>
    public string Problem { get; }
}
