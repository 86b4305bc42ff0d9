using Ddpm.Models;
using Ddpm.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>
/// A checkpoint opened for sampling: the catalog model it belongs to, built and loaded with the chosen weights
/// (`--weights auto|ema|raw`), and what its run recorded. Shared by `ddpm sample` and `ddpm eval`.
/// </summary>
internal sealed class CheckpointModel : IDisposable
{
    private CheckpointModel(ModelEntry entry, nn.Module<Tensor, Tensor, Tensor> model, long step, string weights, string why, string? dataset)
    {
        Entry = entry;
        Model = model;
        Step = step;
        Weights = weights;
        WeightsReason = why;
        Dataset = dataset;
    }

    public ModelEntry Entry { get; }
    public nn.Module<Tensor, Tensor, Tensor> Model { get; }
    /// <summary>The training step the checkpoint was written at.</summary>
    public long Step { get; }
    /// <summary>"ema" or "raw".</summary>
    public string Weights { get; }
    public string WeightsReason { get; }
    /// <summary>The data set the run trained on (its `training.dataset`), if recorded.</summary>
    public string? Dataset { get; }

    public static CheckpointModel Open(string path, SamplingWeights requested)
    {
        if (!File.Exists(path)) throw new UsageException($"Checkpoint '{path}' does not exist.");
        using var checkpoint = Checkpoint.Load(path);
        var recorded = RunConfig.Read(checkpoint.SpecText);
        string name = recorded.Model
            ?? throw new InvalidOperationException($"{path}: the checkpoint does not say which model it holds (no 'model:' in its settings).");
        var entry = ModelCatalog.Find(name)
            ?? throw new InvalidOperationException($"{path} holds a {name}, which is not compiled into this ddpm. Compiled models: {ModelResolver.Known()}.");
        checkpoint.CheckSchedule(entry.Schedule.Fingerprint);
        var model = entry.CreateModel();
        try
        {
            var (state, weights, why) = checkpoint.SamplingState(requested);
            checkpoint.CopyInto(weights, state, model);
            return new CheckpointModel(entry, model, checkpoint.Step, weights, why, recorded.Dataset);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Dispose() => Model.Dispose();
}
