using Ddpm.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Evaluation;

/// <summary>
/// Runs a trained <see cref="FeatureNet"/> over images in batches (eval mode, no autograd, one dispose scope per
/// batch, so memory is bounded by one batch whatever the count) and returns each image's 128-d feature vector
/// (float64) and its predicted class. Images are quantised to 8-bit levels first (<see cref="ImageLevels"/>).
/// Does not own the net.
/// </summary>
public sealed class FeatureExtractor : IDisposable
{
    private readonly FeatureNet net;
    private readonly bool wasTraining;

    /// <summary>Puts <paramref name="net"/> in eval mode until <see cref="Dispose"/>.</summary>
    /// <param name="net">The trained feature net; stays the caller's.</param>
    /// <param name="batchSize">Images per forward pass (&gt;= 1); bounds the memory used.</param>
    public FeatureExtractor(FeatureNet net, int batchSize = 250)
    {
        this.net = net ?? throw new ArgumentNullException(nameof(net));
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batchSize must be >= 1.");
        BatchSize = batchSize;
        wasTraining = net.training;
        net.eval();
    }

    /// <summary>Images per forward pass.</summary>
    public int BatchSize { get; }

    /// <summary>Features and predictions of float images [N, C, H, W] in [-1, 1] (any device; copied to the CPU batch by batch).</summary>
    public (FeatureSet Features, int[] Predictions) Extract(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckShape(images.shape);
        int n = (int)images.shape[0];
        return Run(n, (start, count) => ImageLevels.Quantize(images.narrow(0, start, count).detach().cpu()));
    }

    /// <summary>Features and predictions of 8-bit images, all of them or those at <paramref name="indices"/> (in that order).</summary>
    public (FeatureSet Features, int[] Predictions) Extract(ImageSet images, IReadOnlyList<int>? indices = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckShape([images.Count, images.Channels, images.Height, images.Width]);
        int[] rows = indices?.ToArray() ?? Enumerable.Range(0, images.Count).ToArray();
        return Run(rows.Length, (start, count) => ImageLevels.FromBytes(images, rows.AsSpan(start, count)));
    }

    private (FeatureSet, int[]) Run(int n, Func<int, int, Tensor> batchAt)
    {
        const int d = FeatureNet.FeatureDimension;
        var features = new double[n * d];
        var predictions = new int[n];
        using var noGrad = no_grad();
        for (int start = 0; start < n; start += BatchSize)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(BatchSize, n - start);
            var batch = batchAt(start, count);
            var f = net.Features(batch);
            var predicted = net.Classify(f).argmax(1).to(ScalarType.Int32);
            f.to(ScalarType.Float64).contiguous().data<double>().CopyTo(features, start * d);
            predicted.data<int>().CopyTo(predictions, start);
        }
        return (new FeatureSet(features, n, d), predictions);
    }

    private void CheckShape(long[] shape)
    {
        if (shape.Length != 4 || shape[1] != net.Channels)
            throw new ArgumentException($"Expected images [N, {net.Channels}, H, W], got [{string.Join(", ", shape)}].");
    }

    /// <summary>Puts the net back in training mode if it was.</summary>
    public void Dispose()
    {
        if (wasTraining) net.train();
    }
}
