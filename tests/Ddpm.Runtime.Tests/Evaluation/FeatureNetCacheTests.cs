using System.Security.Cryptography;
using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Runtime.Tests.Data;
using Ddpm.Runtime.Tests.Training;

namespace Ddpm.Runtime.Tests.Evaluation;

/// <summary>
/// The feature-net cache and its trainer on the 8x8 fixture. Serial: training seeds torch's global generator,
/// so another test class drawing from it at the same time would break the bit-for-bit comparisons.
/// </summary>
[Collection(TrainingCollection.Name)]
public class FeatureNetCacheTests
{
    private static readonly FeatureNetOptions Quick = LabelledFixture.QuickOptions;

    private static double[] FeaturesOf(FeatureNet net, ImageSet images)
    {
        using var extractor = new FeatureExtractor(net);
        return extractor.Extract(images).Features.Values;
    }

    private static CachedFeatureNet LoadOrTrain(LabelledDataset data, List<string> log, FeatureNetOptions? options = null)
    {
        log.Clear();
        return FeatureNetCache.LoadOrTrain(data, options ?? Quick, log.Add);
    }

    [Fact]
    public void Trains_once_caches_beside_the_idx_files_and_loads_the_same_weights_back()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir);
        var log = new List<string>();
        Assert.Equal(Path.Combine(dir.Path, "feature-net-v1.bin"), FeatureNetCache.PathFor(data));

        using var trained = LoadOrTrain(data, log);
        Assert.Contains(log, l => l.StartsWith("feature net: training on 96 idx:"));
        Assert.Contains(log, l => l.Contains("cached in " + FeatureNetCache.PathFor(data)));
        Assert.Equal(FeatureNetCache.PathFor(data), trained.Path);
        Assert.True(File.Exists(trained.Path));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.partial-*"));

        using var loaded = LoadOrTrain(data, log);
        Assert.Equal(["feature net: using " + trained.Path +
                      $" (test accuracy {trained.Info.TestAccuracy * 100:F2}%, weights sha256 {trained.Info.WeightsSha256![..12]})"], log);

        Assert.Equal(FeaturesOf(trained.Net, data.TestImages), FeaturesOf(loaded.Net, data.TestImages));
        var (a, b) = (trained.Info, loaded.Info);
        Assert.Equal((a.Dataset, a.Fingerprint, a.ArchitectureVersion, a.Channels, a.ImageSize, a.Options, a.TestAccuracy, a.TrainSeconds, a.TorchThreads),
                     (b.Dataset, b.Fingerprint, b.ArchitectureVersion, b.Channels, b.ImageSize, b.Options, b.TestAccuracy, b.TrainSeconds, b.TorchThreads));
        Assert.Equal(LabelledFixture.ClassNames, b.ClassNames);
        Assert.Equal(data.Fingerprint(), b.Fingerprint);
        // The trained net and the one read back are named by the same hash of their weights.
        Assert.Equal(FeatureNetCache.WeightsSha256(trained.Net), a.WeightsSha256);
        Assert.Equal(a.WeightsSha256, b.WeightsSha256);
        Assert.Equal((1, 8, FeatureNet.ArchitectureVersion), (b.Channels, b.ImageSize, b.ArchitectureVersion));
        // The recorded accuracy is the net's accuracy on the test split.
        Assert.Equal(FeatureNetTrainer.Accuracy(loaded.Net, data.TestImages, data.TestLabels), b.TestAccuracy);
    }

    [Fact]
    public void Training_is_deterministic_for_a_seed_and_differs_for_another()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir);
        var (first, accuracy1) = FeatureNetTrainer.Train(data, Quick);
        var (second, accuracy2) = FeatureNetTrainer.Train(data, Quick);
        var (other, _) = FeatureNetTrainer.Train(data, Quick with { Seed = 1 });
        using (first)
        using (second)
        using (other)
        {
            var f1 = FeaturesOf(first, data.TestImages);
            Assert.Equal(f1, FeaturesOf(second, data.TestImages));
            Assert.Equal(accuracy1, accuracy2);
            Assert.NotEqual(f1, FeaturesOf(other, data.TestImages));
            Assert.Equal(FeatureNetCache.WeightsSha256(first), FeatureNetCache.WeightsSha256(second));
            Assert.NotEqual(FeatureNetCache.WeightsSha256(first), FeatureNetCache.WeightsSha256(other));
        }
    }

    [Fact]
    public void Weights_sha256_is_the_sha256_of_the_saved_weights_and_follows_every_value()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        var (net, _) = FeatureNetTrainer.Train(data, Quick);
        using (net)
        {
            string path = dir.File("weights.bin");
            net.save(path);
            string before = FeatureNetCache.WeightsSha256(net);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), before);
            Assert.Matches("^[0-9a-f]{64}$", before);
            using (TorchSharp.torch.no_grad())
            {
                var weight = net.parameters().First();
                weight.view(-1)[0].add_(1e-3f);
            }
            Assert.NotEqual(before, FeatureNetCache.WeightsSha256(net));
        }
    }

    [Fact]
    public void Other_options_retrain_and_overwrite_the_cache()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir);
        var log = new List<string>();
        using (LoadOrTrain(data, log)) { }

        var changed = Quick with { Seed = 5 };
        using var retrained = LoadOrTrain(data, log, changed);
        Assert.Contains(log, l => l.Contains("was trained with other options") && l.EndsWith("; retraining."));
        Assert.Equal(changed, FeatureNetCache.Read(retrained.Path).Info.Options);

        using var again = LoadOrTrain(data, log, changed);
        Assert.StartsWith("feature net: using ", Assert.Single(log));
    }

    [Fact]
    public void Other_data_in_the_same_folder_is_retrained()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir);
        var log = new List<string>();
        using (LoadOrTrain(data, log)) { }

        var pixels = (byte[])data.TestImages.Pixels.Clone();
        pixels[17] ^= 1;
        var otherTest = new ImageSet(pixels, data.TestImages.Count, 1, 8, 8);
        var other = data with { TestImages = otherTest };
        Assert.NotEqual(data.Fingerprint(), other.Fingerprint());

        using var retrained = LoadOrTrain(other, log);
        Assert.Contains(log, l => l.EndsWith("was trained on other data (its data fingerprint differs); retraining."));
        Assert.Equal(other.Fingerprint(), FeatureNetCache.Read(retrained.Path).Info.Fingerprint);
    }

    public static TheoryData<string, string> Damages => new()
    {
        { "payload", "is corrupt: the SHA-256 of its contents does not match" },
        { "truncate", "is truncated or has trailing bytes" },
        { "append", "is truncated or has trailing bytes" },
        { "magic", "is not a feature-net file" },
        { "version", "has format version 2; this build reads version 1" },
        { "empty", "is not a feature-net file" },
    };

    private static void Damage(string path, string how)
    {
        var bytes = File.ReadAllBytes(path);
        switch (how)
        {
            case "payload": bytes[bytes.Length / 2] ^= 0x40; break;
            case "truncate": bytes = bytes[..^10]; break;
            case "append": bytes = [.. bytes, 0]; break;
            case "magic": bytes[0] = (byte)'X'; break;
            case "version": bytes[8] = 2; break;
            case "empty": bytes = []; break;
        }
        File.WriteAllBytes(path, bytes);
    }

    [Theory]
    [MemberData(nameof(Damages))]
    public void Damaged_cache_file_is_rejected_by_read_and_retrained_by_load_or_train(string how, string message)
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        var log = new List<string>();
        string path;
        using (var first = LoadOrTrain(data, log)) path = first.Path;
        Damage(path, how);

        var e = Assert.Throws<InvalidDataException>(() => FeatureNetCache.Read(path));
        Assert.StartsWith(path + " ", e.Message);
        Assert.Contains(message, e.Message);

        using var retrained = LoadOrTrain(data, log);
        Assert.Equal($"feature net: {e.Message}; retraining.", log[0]);
        var (net, info) = FeatureNetCache.Read(path); // intact again
        using (net) Assert.Equal(data.Fingerprint(), info.Fingerprint);
    }

    [Fact]
    public void A_file_that_records_other_classes_shape_or_an_impossible_accuracy_is_retrained()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        var log = new List<string>();
        using var cached = LoadOrTrain(data, log);
        var info = cached.Info;

        foreach (var (bad, reason) in new (FeatureNetInfo, string)[]
                 {
                     (info with { ClassNames = ["row", "column", "dot"] }, "was trained with other class names"),
                     (info with { ImageSize = 16 }, "is for 1x16x16 images, the data set has 1x8x8"),
                     (info with { TestAccuracy = 1.5 }, "records an impossible test accuracy 1.5"),
                     (info with { TestAccuracy = double.NaN }, "records an impossible test accuracy NaN"),
                 })
        {
            FeatureNetCache.Write(cached.Path, cached.Net, bad);
            using var retrained = LoadOrTrain(data, log);
            Assert.Equal($"feature net: {cached.Path} {reason}; retraining.", log[0]);
        }
    }

    [Fact]
    public void Write_then_read_keeps_every_field()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        var (net, _) = FeatureNetTrainer.Train(data, Quick);
        using (net)
        {
            var info = new FeatureNetInfo("name ü", "abc123", FeatureNet.ArchitectureVersion, 1, 8, ["a", "b", "c"],
                                          new FeatureNetOptions(3, 7, 0.125, long.MaxValue), 0.75, 12.5, 3);
            string path = dir.File("sub/net.bin");
            FeatureNetCache.Write(path, net, info);
            var (read, back) = FeatureNetCache.Read(path);
            using (read)
            {
                Assert.Equal(info with { ClassNames = back.ClassNames, WeightsSha256 = back.WeightsSha256 }, back);
                Assert.Null(info.WeightsSha256);
                Assert.Equal(FeatureNetCache.WeightsSha256(net), back.WeightsSha256);
                Assert.Equal(info.ClassNames, back.ClassNames);
                Assert.Equal(FeaturesOf(net, data.TestImages), FeaturesOf(read, data.TestImages));
                Assert.False(read.training);
            }
            // Layout: "DDPMFNET", int32 1, int64 payload length, payload, SHA-256 of the payload.
            var bytes = File.ReadAllBytes(path);
            Assert.Equal("DDPMFNET"u8.ToArray(), bytes[..8]);
            Assert.Equal(1, BitConverter.ToInt32(bytes, 8));
            long length = BitConverter.ToInt64(bytes, 12);
            Assert.Equal(20 + length + 32, bytes.LongLength);
            Assert.Equal(SHA256.HashData(bytes.AsSpan(20, (int)length)), bytes[^32..]);
        }
    }

    [Fact]
    public void An_unwritable_cache_folder_is_logged_and_the_trained_net_used()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        File.WriteAllText(dir.File("blocker"), "a file where the cache folder should be");
        var log = new List<string>();

        using var net = LoadOrTrain(data with { CacheFolder = dir.File("blocker") }, log, Quick);

        Assert.Contains(log, l => l.StartsWith("feature net: trained, but could not cache it in " + Path.Combine(dir.File("blocker"), "feature-net-v1.bin")));
        Assert.Equal(data.Fingerprint(), net.Info.Fingerprint);
        Assert.Equal(FeatureNetTrainer.Accuracy(net.Net, data.TestImages, data.TestLabels), net.Info.TestAccuracy);
    }

    [Fact]
    public void Fingerprint_is_the_sha256_of_shapes_pixels_labels_and_class_names()
    {
        using var dir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 6, test: 3);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (images, labels) in new[] { (data.TrainImages, data.TrainLabels), (data.TestImages, data.TestLabels) })
        {
            foreach (int v in new[] { images.Count, 1, 8, 8 }) hash.AppendData(BitConverter.GetBytes(v));
            hash.AppendData(images.Pixels);
            hash.AppendData(labels);
        }
        hash.AppendData("row\ncolumn\nsquare\n"u8);
        Assert.Equal(Convert.ToHexStringLower(hash.GetHashAndReset()), data.Fingerprint());

        var labels2 = (byte[])data.TrainLabels.Clone();
        labels2[0] = 2;
        Assert.NotEqual(data.Fingerprint(), (data with { TrainLabels = labels2 }).Fingerprint());
        Assert.NotEqual(data.Fingerprint(), (data with { ClassNames = ["row", "column", "Square"] }).Fingerprint());
        // The name and the cache folder are not part of it: the same data elsewhere keeps its net.
        Assert.Equal(data.Fingerprint(), (data with { Name = "other", CacheFolder = "elsewhere" }).Fingerprint());
    }
}
