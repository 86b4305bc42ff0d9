using Ddpm.Onnx;

namespace Ddpm.Server.Tests;

/// <summary>The facades' progress and cancellation hook: told before every model call, and a cancelled draw stops at the next one.</summary>
public sealed class SamplingProgressTests(TinyRuns runs) : IClassFixture<TinyRuns>
{
    [Fact]
    public void DiffusionModel_reports_every_model_call_and_stops_at_the_next_after_cancellation()
    {
        using var model = DiffusionModel.Load(Path.Combine(runs.Tiny, "checkpoints", "last.ckpt"));
        var seen = new List<SamplingProgress>();
        using (var images = model.Sample(70, steps: 5, progress: new Collect<SamplingProgress>(seen.Add)))
            Assert.Equal(70, images.shape[0]);
        // Two batches (64 + 6) of 5 calls, then the final report.
        Assert.Equal(Enumerable.Range(1, 10).Append(10), seen.Select(p => p.ModelCalls));
        Assert.All(seen, p => Assert.Equal((10, 70), (p.TotalModelCalls, p.Count)));
        Assert.Equal([0, 0, 0, 0, 0, 64, 64, 64, 64, 64, 70], seen.Select(p => p.Images));
        Assert.Equal(1.0, seen[^1].Fraction);

        using var cancel = new CancellationTokenSource();
        int calls = 0;
        Assert.Throws<OperationCanceledException>(() => model.Sample(70, steps: 5, cancellationToken: cancel.Token,
            progress: new Collect<SamplingProgress>(p => { calls = p.ModelCalls; if (p.ModelCalls == 3) cancel.Cancel(); })));
        Assert.Equal(3, calls);
    }

    [Fact]
    public void OnnxDiffusionModel_reports_every_model_call_and_stops_at_the_next_after_cancellation()
    {
        using var model = OnnxDiffusionModel.Load(runs.Onnx);
        var seen = new List<SamplingProgress>();
        model.Sample(70, SamplerKind.Ddim, steps: 5, progress: new Collect<SamplingProgress>(seen.Add));
        Assert.Equal(Enumerable.Range(1, 10), seen.Select(p => p.ModelCalls));
        Assert.Equal([0, 0, 0, 0, 0, 64, 64, 64, 64, 64], seen.Select(p => p.Images));

        using var cancel = new CancellationTokenSource();
        int calls = 0;
        Assert.Throws<OperationCanceledException>(() => model.Sample(70, SamplerKind.Ddpm, cancellationToken: cancel.Token,
            progress: new Collect<SamplingProgress>(p => { calls = p.ModelCalls; if (p.ModelCalls == 3) cancel.Cancel(); })));
        Assert.Equal(3, calls);
    }

    private sealed class Collect<T>(Action<T> add) : IProgress<T>
    {
        public void Report(T value) => add(value);
    }
}
