// Both facades (DiffusionModel on TorchSharp, OnnxDiffusionModel on ONNX Runtime) report sampling with this type.
namespace Ddpm;

/// <summary>How far a draw has come: reported before each model call, and after each batch.</summary>
/// <param name="ModelCalls">Model calls started so far (a guided call on a doubled batch counts once).</param>
/// <param name="TotalModelCalls">Model calls of the whole draw: the sampler's calls per batch times the batches.</param>
/// <param name="Images">Images finished so far.</param>
/// <param name="Count">Images asked for.</param>
public sealed record SamplingProgress(int ModelCalls, int TotalModelCalls, int Images, int Count)
{
    /// <summary>The share done, 0 to 1.</summary>
    public double Fraction => TotalModelCalls <= 0 ? 1 : Math.Clamp((double)ModelCalls / TotalModelCalls, 0, 1);

    /// <summary>
    /// The progress hook of a draw: before each model call it stops the draw if <paramref name="cancellationToken"/> asks
    /// (so a cancelled draw ends within one step) and reports to <paramref name="progress"/>; null when neither is given.
    /// </summary>
#pragma warning disable CA1068 // internal: the token is kept beside the progress it goes with, as the public methods pass them
    internal static Action? Hook(IProgress<SamplingProgress>? progress, CancellationToken cancellationToken, int callsPerBatch, int batchSize,
                                 int count, Func<int> imagesDone)
#pragma warning restore CA1068
    {
        if (progress is null && !cancellationToken.CanBeCanceled) return null;
        int calls = 0, total = callsPerBatch * ((count + batchSize - 1) / batchSize);
        return () =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            calls++;
            progress?.Report(new SamplingProgress(Math.Min(calls, total), total, imagesDone(), count));
        };
    }
}
