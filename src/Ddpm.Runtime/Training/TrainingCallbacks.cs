using Ddpm.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Training;

/// <summary>What one finished optimiser step reports.</summary>
/// <param name="Step">Steps completed, 1-based.</param>
/// <param name="TotalSteps">The step the run ends at (<see cref="Trainer.TotalSteps"/>).</param>
/// <param name="Loss">The loss the step minimised (min-SNR weighted when the spec asks for it), before any float16 loss scaling.</param>
/// <param name="LearningRate">The learning rate the step used, after warm-up.</param>
/// <param name="GradNorm">Global L2 norm of the gradients before clipping.</param>
/// <param name="Epoch">Epoch of the batch this step trained on.</param>
public sealed record TrainingProgress(long Step, long TotalSteps, double Loss, double LearningRate, double GradNorm, int Epoch);

/// <summary>
/// Time to draw samples. <paramref name="Model"/> is the EMA model when the run keeps one.
/// Sample with your own <see cref="Generator"/>: the training noise generator is not shared, so sampling never changes the loss curve.
/// </summary>
/// <param name="Step">Steps completed, 1-based.</param>
/// <param name="IsFinal">True after the run's last step.</param>
/// <param name="Model">The weights to sample from (<see cref="Trainer.SamplingModel"/>); owned by the trainer or its caller, do not dispose.</param>
/// <param name="Diffusion">The schedule and samplers the model was trained under.</param>
public sealed record SampleRequest(long Step, bool IsFinal, nn.Module<Tensor, Tensor, Tensor> Model, GaussianDiffusion Diffusion);

/// <summary>
/// Time to evaluate sample quality: score <see cref="Trainer.EmaModel"/> (when there is one) and <see cref="Trainer.Model"/>,
/// then call <see cref="Trainer.PreferWeights"/>. Sample with your own generator, as for <see cref="SampleRequest"/>.
/// </summary>
/// <param name="Step">Steps completed, 1-based.</param>
/// <param name="IsFinal">True after the run's last step.</param>
/// <param name="Trainer">The trainer to evaluate and to tell the result.</param>
public sealed record EvaluationRequest(long Step, bool IsFinal, Trainer Trainer);

/// <summary>Time to write a checkpoint: call <c>Trainer.SaveCheckpoint(path)</c> with a path of your choice.</summary>
/// <param name="Step">Steps completed, 1-based.</param>
/// <param name="IsFinal">True after the run's last step.</param>
/// <param name="Trainer">The trainer whose state to save.</param>
public sealed record CheckpointRequest(long Step, bool IsFinal, Trainer Trainer);

/// <summary>Hooks the front end supplies; all run synchronously on the training thread between steps.</summary>
public sealed class TrainingCallbacks
{
    /// <summary>Receives every step's loss.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Every <c>SampleEvery</c> steps and after the last step.</summary>
    public Action<SampleRequest>? SampleDue { get; init; }
    /// <summary>Every <c>CheckpointEvery</c> steps, after <see cref="CheckpointInterval"/> of training, and after the last step.</summary>
    public Action<CheckpointRequest>? CheckpointDue { get; init; }
    /// <summary>
    /// Also call <see cref="CheckpointDue"/> after the first step that ends this long after the last checkpoint (or the start
    /// of <c>Train</c>), so a killed run loses at most about this much work; null: by steps only.
    /// </summary>
    public TimeSpan? CheckpointInterval { get; init; }
    /// <summary>Every <c>Eval.Every</c> steps and after the last step, when <c>Eval.Every</c> &gt; 0; after the checkpoint, before samples.</summary>
    public Action<EvaluationRequest>? EvaluationDue { get; init; }
}

/// <summary>
/// An <see cref="IProgress{T}"/> that calls back on the reporting (training) thread, in order; <see cref="Progress{T}"/>
/// would post each report to the thread pool.
/// </summary>
/// <param name="report">Called with every report.</param>
public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc/>
    public void Report(T value) => report(value);
}
