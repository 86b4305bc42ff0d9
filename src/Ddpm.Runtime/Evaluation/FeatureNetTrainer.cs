using System.Diagnostics;
using System.Globalization;
using Ddpm.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Evaluation;

/// <summary>
/// Trains a <see cref="FeatureNet"/> on a data set's training split: cross-entropy, Adam with a half-cosine
/// learning rate, random horizontal flips where the data set allows them, then the test-split accuracy.
/// </summary>
/// <remarks>
/// Deterministic on the CPU for a given seed and torch thread count: the initial weights come from torch's
/// global generator seeded with <see cref="FeatureNetOptions.Seed"/> (its previous state is put back afterwards),
/// shuffles and flips from <see cref="Random"/> with the same seed, and nothing else draws random numbers.
/// </remarks>
public static class FeatureNetTrainer
{
    /// <summary>How often (at most) a progress line is written.</summary>
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(10);

    /// <summary>Trains a new net on <paramref name="data"/>'s training split and measures it on the test split.</summary>
    /// <param name="data">The labelled data set.</param>
    /// <param name="options">Epochs, batch size, learning rate and seed; <see cref="FeatureNetOptions.Default"/> when null.</param>
    /// <param name="log">Receives a line at the start, progress lines at most every 10 seconds, and each epoch's test accuracy.</param>
    /// <returns>The trained net in eval mode (the caller owns it) and its test accuracy after the last epoch, in [0, 1].</returns>
    public static (FeatureNet Net, double TestAccuracy) Train(LabelledDataset data, FeatureNetOptions? options = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options = (options ?? FeatureNetOptions.Default).Validated();
        var net = Create(data, options.Seed);
        try
        {
            double accuracy = Fit(net, data, options, log);
            return (net, accuracy);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>Share of <paramref name="images"/> whose predicted class equals its label.</summary>
    public static double Accuracy(FeatureNet net, ImageSet images, byte[] labels, int batchSize = 250)
    {
        ArgumentNullException.ThrowIfNull(net);
        if (labels.Length != images.Count) throw new ArgumentException($"{labels.Length} labels for {images.Count} images.", nameof(labels));
        using var extractor = new FeatureExtractor(net, batchSize);
        var predicted = extractor.Extract(images).Predictions;
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if (predicted[i] == labels[i]) correct++;
        return (double)correct / labels.Length;
    }

    private static FeatureNet Create(LabelledDataset data, long seed)
    {
        using var saved = random.get_rng_state();
        random.manual_seed(seed);
        try { return new FeatureNet(data.Channels, data.ClassNames.Count); }
        finally { random.set_rng_state(saved); }
    }

    private static double Fit(FeatureNet net, LabelledDataset data, FeatureNetOptions options, Action<string>? log)
    {
        var train = data.TrainImages;
        int n = train.Count, batchSize = Math.Min(options.BatchSize, n);
        int batchesPerEpoch = (n + batchSize - 1) / batchSize;
        long totalSteps = (long)batchesPerEpoch * options.Epochs;
        log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"feature net: training on {n:N0} {data.Name} images ({data.Channels}x{data.ImageSize}x{data.ImageSize}, {data.ClassNames.Count} classes), " +
            $"{options.Epochs} epochs of {batchesPerEpoch} batches of {batchSize}, seed {options.Seed}{(data.FlipInvariant ? ", random flips" : "")}"));

        var shuffler = new Random(unchecked((int)options.Seed ^ (int)(options.Seed >> 32)));
        var order = Enumerable.Range(0, n).ToArray();
        var flips = new bool[batchSize];
        var labels = new long[batchSize];
        var watch = Stopwatch.StartNew();
        var lastLog = TimeSpan.Zero;
        double accuracy = 0;
        using var optimizer = optim.Adam(net.parameters(), options.LearningRate);
        long step = 0;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            net.train();
            shuffler.Shuffle(order);
            double lossSum = 0;
            int lossCount = 0;
            for (int b = 0; b < batchesPerEpoch; b++, step++)
            {
                using var scope = NewDisposeScope();
                int start = b * batchSize, count = Math.Min(batchSize, n - start);
                var indices = order.AsSpan(start, count);
                for (int i = 0; i < count; i++)
                {
                    flips[i] = data.FlipInvariant && shuffler.Next(2) == 1;
                    labels[i] = data.TrainLabels[indices[i]];
                }
                var x = ImageLevels.FromBytes(train, indices, flips.AsSpan(0, count));
                var y = tensor(labels.AsSpan(0, count).ToArray(), ScalarType.Int64);
                var loss = nn.functional.cross_entropy(net.forward(x), y);
                optimizer.zero_grad();
                loss.backward();
                // Half cosine from the peak rate to zero over the whole run.
                double lr = options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / totalSteps));
                foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
                optimizer.step();
                lossSum += loss.item<float>();
                lossCount++;

                if (log is not null && watch.Elapsed - lastLog >= ProgressEvery)
                {
                    lastLog = watch.Elapsed;
                    double rate = (step + 1) * (double)batchSize / watch.Elapsed.TotalSeconds;
                    log(string.Create(CultureInfo.InvariantCulture,
                        $"feature net: epoch {epoch + 1}/{options.Epochs}, batch {b + 1}/{batchesPerEpoch}, loss {lossSum / lossCount:F4}, " +
                        $"{rate:F0} img/s, {watch.Elapsed.TotalSeconds:F0} s"));
                }
            }
            net.eval();
            accuracy = Accuracy(net, data.TestImages, data.TestLabels);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"feature net: epoch {epoch + 1}/{options.Epochs} done, mean loss {lossSum / Math.Max(1, lossCount):F4}, " +
                $"test accuracy {accuracy * 100:F2}% ({data.TestImages.Count:N0} images), {watch.Elapsed.TotalSeconds:F0} s"));
        }
        net.eval();
        return accuracy;
    }
}
