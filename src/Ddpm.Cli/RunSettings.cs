namespace Ddpm.Cli;

/// <summary>How `ddpm train` treats the run folder and what it writes besides the spec's schedule.</summary>
/// <param name="FinalSamples">Images in the grid after the last step (0: none).</param>
/// <param name="CheckpointInterval">Also checkpoint after this much training time (zero: off).</param>
internal sealed record RunSettings(bool Resume, bool Overwrite, int FinalSamples, TimeSpan CheckpointInterval)
{
    /// <summary>Whether the batch size came from --batch-size (one larger than the data set is then refused, not shrunk).</summary>
    public bool BatchSizeGiven { get; init; }
    /// <summary>Whether --final-samples was given (else a resume draws the final grid its run recorded).</summary>
    public bool FinalSamplesGiven { get; init; }
}
