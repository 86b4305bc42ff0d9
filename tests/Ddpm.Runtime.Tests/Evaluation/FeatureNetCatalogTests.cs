using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Runtime.Tests.Data;
using Ddpm.Runtime.Tests.Training;

namespace Ddpm.Runtime.Tests.Evaluation;

/// <summary>
/// Ready-made feature nets: the Fashion-MNIST net embedded in Ddpm.Runtime (it loads, and its bytes and weights are the
/// ones its manifest names), a net made ready for the 8x8 fixture (used without training anything, the cache folder left
/// empty), and damaged or lying files (one error each, never a silent retraining). Serial: training seeds torch's global
/// generator.
/// </summary>
[Collection(TrainingCollection.Name)]
public class FeatureNetCatalogTests
{
    private static readonly FeatureNetOptions Quick = LabelledFixture.QuickOptions;

    /// <summary>The folder the shipped nets are committed in (found from this file's path: tests find their fixtures so).</summary>
    private static string CommittedFolder([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "..", "src", "Ddpm.Runtime", "Evaluation", "FeatureNets"));

    private static FeatureNetManifest ShippedFashionMnist() =>
        Assert.Single(FeatureNetCatalog.Shipped.Nets, n => n.Dataset == "fashion-mnist");

    [Fact]
    public void The_shipped_fashion_mnist_net_loads_and_its_sha256_matches_the_manifest()
    {
        var manifest = ShippedFashionMnist();
        byte[] bytes = FeatureNetCatalog.ReadBytes(typeof(FeatureNetCatalog).Assembly, FeatureNetCatalog.ResourcePrefix + manifest.File)!;
        Assert.NotNull(bytes);
        Assert.Equal(manifest.Bytes, bytes.LongLength);
        Assert.Equal(manifest.Sha256, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        Assert.True(bytes.Length < 5 << 20, $"the shipped net is {bytes.Length:N0} bytes");
        Assert.Equal("fashion-mnist.fnet", manifest.File);
        Assert.StartsWith("ddpm eval --train-feature-net --dataset fashion-mnist ", manifest.Command);
        Assert.Equal(FeatureNetOptions.Default, manifest.Options);
        Assert.Equal(FeatureNet.ArchitectureVersion, manifest.ArchitectureVersion);
        Assert.InRange(manifest.TestAccuracy, 0.90, 1.0);

        var (net, info) = FeatureNetCatalog.Shipped.Load(manifest);
        using (net)
        {
            Assert.Equal(manifest.WeightsSha256, info.WeightsSha256);
            Assert.Equal(manifest.WeightsSha256, FeatureNetCache.WeightsSha256(net)); // the net in memory is the one named
            Assert.Equal((manifest.DataSha256, manifest.TestAccuracy, manifest.Options), (info.Fingerprint, info.TestAccuracy, info.Options));
            Assert.Equal((1, 10, 28), (net.Channels, net.Classes, info.ImageSize));
            Assert.Equal(FashionMnist.ClassNames, info.ClassNames);
            Assert.False(net.training);
        }
    }

    [Fact]
    public void The_embedded_net_and_manifest_are_the_committed_files()
    {
        string folder = CommittedFolder();
        var manifest = ShippedFashionMnist();
        var committed = FeatureNetCatalog.FromFolder(folder);
        Assert.Equal(manifest, Assert.Single(committed.Nets, n => n.Dataset == "fashion-mnist"));
        Assert.Equal(manifest.Sha256, FeatureNetManifest.Sha256Of(committed.ReadVerified(manifest)));
        // The manifest names no machine's paths: the command is run from the repository's root.
        Assert.Contains("--out src/Ddpm.Runtime/Evaluation/FeatureNets/fashion-mnist.fnet", manifest.Command);
    }

    [SkippableFact]
    public void The_shipped_net_stands_for_the_cached_fashion_mnist_data_with_the_accuracy_it_records()
    {
        string cache = FashionMnist.CacheFolder();
        Skip.IfNot(File.Exists(Path.Combine(cache, FashionMnist.SumsFile)),
                   $"Fashion-MNIST is not in the cache ({cache}; `ddpm data fashion-mnist` puts it there); tests never download it");
        var data = LabelledDatasets.Load("fashion-mnist");
        var manifest = ShippedFashionMnist();
        Assert.Equal(manifest.DataSha256, data.Fingerprint());
        var log = new List<string>();
        using var net = FeatureNetCache.LoadOrTrain(data, FeatureNetOptions.Default, log.Add);
        Assert.True(net.Shipped);
        Assert.Equal($"feature net: using fashion-mnist.fnet (shipped with Ddpm.Runtime; test accuracy {manifest.TestAccuracy * 100:F2}%, " +
                     $"weights sha256 {manifest.WeightsSha256[..12]}); nothing to train", Assert.Single(log));
        // The accuracy it records is the net's on these 10,000 test images (within a few images: another torch thread count
        // may round a borderline logit the other way).
        Assert.InRange(FeatureNetTrainer.Accuracy(net.Net, data.TestImages, data.TestLabels), manifest.TestAccuracy - 0.001, manifest.TestAccuracy + 0.001);
    }

    [Fact]
    public void A_tampered_shipped_resource_is_refused_with_one_error()
    {
        var manifest = ShippedFashionMnist();
        byte[] bytes = FeatureNetCatalog.ReadBytes(typeof(FeatureNetCatalog).Assembly, FeatureNetCatalog.ResourcePrefix + manifest.File)!;
        bytes[bytes.Length / 2] ^= 0x01; // one bit in the weights
        var tampered = new FeatureNetCatalog([manifest], _ => bytes, "shipped with Ddpm.Runtime");

        var e = Assert.Throws<InvalidDataException>(() => tampered.Load(manifest));
        Assert.StartsWith($"The feature net fashion-mnist.fnet (shipped with Ddpm.Runtime) does not match its manifest: {bytes.Length:N0} bytes with SHA-256 ", e.Message);
        Assert.Contains($"the manifest says {manifest.Bytes:N0} bytes with SHA-256 {manifest.Sha256[..12]}", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        var missing = new FeatureNetCatalog([manifest], _ => null, "shipped with Ddpm.Runtime");
        Assert.Contains("is missing, though its manifest lists it", Assert.Throws<InvalidDataException>(() => missing.Load(manifest)).Message);
    }

    /// <summary>Trains the fixture's net once and writes it with its manifest into <paramref name="folder"/>, as --train-feature-net --out does.</summary>
    private static FeatureNetManifest Ship(LabelledDataset data, string folder, FeatureNetOptions options)
    {
        var (net, info) = FeatureNetCache.Train(data, options, log: null);
        using (net)
        {
            string path = Path.Combine(folder, "shapes.fnet");
            FeatureNetCache.Write(path, net, info);
            var manifest = FeatureNetManifest.Describe(path, info, "ddpm eval --train-feature-net --dataset idx:shapes --out shapes.fnet");
            manifest.Write(FeatureNetManifest.PathFor(path));
            return manifest;
        }
    }

    [Fact]
    public void A_data_set_with_a_ready_made_net_is_scored_without_training_and_its_cache_folder_stays_empty()
    {
        using var dir = new TempFolder();
        using var shippedDir = new TempFolder();
        var data = LabelledFixture.Load(dir);
        var manifest = Ship(data, shippedDir.Path, Quick);
        var catalog = FeatureNetCatalog.FromFolder(shippedDir.Path);
        Assert.Equal(manifest, catalog.For(data.Fingerprint()));
        var before = Directory.GetFiles(dir.Path).Order().ToArray();

        var log = new List<string>();
        using (var ready = FeatureNetCache.LoadOrTrain(data, Quick, log.Add, catalog))
        {
            Assert.True(ready.Shipped);
            Assert.Equal(manifest.WeightsSha256, ready.Info.WeightsSha256);
            Assert.Equal($"shapes.fnet, from {shippedDir.Path}", ready.Path);
            Assert.Equal($"feature net: using shapes.fnet (from {shippedDir.Path}; test accuracy {manifest.TestAccuracy * 100:F2}%, " +
                         $"weights sha256 {manifest.WeightsSha256[..12]}); nothing to train", Assert.Single(log));
        }
        // Nothing was trained or cached: the data folder holds what it held.
        Assert.False(File.Exists(FeatureNetCache.PathFor(data)));
        Assert.Equal(before, Directory.GetFiles(dir.Path).Order().ToArray());

        // The same through SampleQuality, which ddpm eval and training.eval use.
        log.Clear();
        using (var quality = new SampleQuality(data, log.Add, new QualitySettings(FeatureNet: Quick), catalog))
        {
            Assert.True(quality.FeatureNetShipped);
            Assert.Equal(manifest.WeightsSha256, quality.FeatureNet.WeightsSha256);
            Assert.DoesNotContain(log, l => l.Contains("training on"));
            Assert.True(quality.Score(data.TestImages, seed: 0).Fid >= 0);
        }
        Assert.False(File.Exists(FeatureNetCache.PathFor(data)));

        // A ready-made net trained on other data, or with other options, is not used: the data set gets its own as before.
        var otherOptions = Quick with { Seed = 7 };
        log.Clear();
        using (var trained = FeatureNetCache.LoadOrTrain(data, otherOptions, log.Add, catalog))
        {
            Assert.False(trained.Shipped);
            Assert.Contains(log, l => l.StartsWith($"feature net: the net shapes.fnet (from {shippedDir.Path}) was trained with other options") && l.EndsWith("; it is not used."));
            Assert.Contains(log, l => l.StartsWith("feature net: training on 96 "));
            Assert.Equal(FeatureNetCache.PathFor(data), trained.Path);
        }
    }

    [Fact]
    public void A_net_named_for_other_data_is_not_used_and_the_log_says_why()
    {
        using var dir = new TempFolder();
        using var shippedDir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        Ship(data, shippedDir.Path, Quick);
        // The manifest's data set name is the fixture's, but the data differs in one label.
        var labels = (byte[])data.TrainLabels.Clone();
        labels[0] = 2;
        var other = data with { TrainLabels = labels };

        var log = new List<string>();
        using var trained = FeatureNetCache.LoadOrTrain(other, Quick, log.Add, FeatureNetCatalog.FromFolder(shippedDir.Path));
        Assert.False(trained.Shipped);
        Assert.StartsWith($"feature net: the net shapes.fnet (from {shippedDir.Path}) is for other {data.Name} data (data sha256 {data.Fingerprint()[..12]}, " +
                          $"this data {other.Fingerprint()[..12]}); it is not used.", log[0]);
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("weights")]
    public void A_ready_made_net_that_does_not_match_its_manifest_is_one_error_and_nothing_is_trained(string how)
    {
        using var dir = new TempFolder();
        using var shippedDir = new TempFolder();
        var data = LabelledFixture.Load(dir, train: 48, test: 24);
        var manifest = Ship(data, shippedDir.Path, Quick);
        string netPath = Path.Combine(shippedDir.Path, manifest.File), manifestPath = FeatureNetManifest.PathFor(netPath);
        string expected;
        switch (how)
        {
            case "flip":
                var bytes = File.ReadAllBytes(netPath);
                bytes[^100] ^= 0x10;
                File.WriteAllBytes(netPath, bytes);
                expected = "does not match its manifest: ";
                break;
            case "truncate":
                File.WriteAllBytes(netPath, File.ReadAllBytes(netPath)[..^1]);
                expected = $"does not match its manifest: {manifest.Bytes - 1:N0} bytes";
                break;
            default:
                // A manifest that names other weights, for a file whose own SHA-256 it records correctly.
                var json = JsonNode.Parse(File.ReadAllText(manifestPath))!;
                json["weights_sha256"] = new string('0', 64);
                File.WriteAllText(manifestPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                expected = $"does not match its manifest: its weights have SHA-256 {manifest.WeightsSha256[..12]}, the manifest names 000000000000.";
                break;
        }

        var log = new List<string>();
        var e = Assert.Throws<InvalidDataException>(() => FeatureNetCache.LoadOrTrain(data, Quick, log.Add, FeatureNetCatalog.FromFolder(shippedDir.Path)));
        Assert.StartsWith($"The feature net shapes.fnet (from {shippedDir.Path}) ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain(log, l => l.Contains("training on"));
        Assert.False(File.Exists(FeatureNetCache.PathFor(data)));
    }

    [Fact]
    public void A_manifest_reads_back_equal_and_a_broken_one_is_named()
    {
        var manifest = ShippedFashionMnist();
        Assert.Equal(manifest, FeatureNetManifest.Parse(manifest.ToJson(), "test"));
        foreach (var (text, message) in new[]
                 {
                     ("{", "test is not a feature-net manifest: "),
                     (manifest.ToJson().Replace("\"schema_version\": 1", "\"schema_version\": 2"), "schema version 2, this build reads 1"),
                     (manifest.ToJson().Replace(manifest.Sha256, "ABC"), "\"sha256\" is not a lowercase SHA-256: 'ABC'"),
                     (manifest.ToJson().Replace("\"fashion-mnist.fnet\"", "\"../x.fnet\""), "\"file\" must be a file name ending in .fnet"),
                 })
            Assert.Contains(message, Assert.Throws<InvalidDataException>(() => FeatureNetManifest.Parse(text, "test")).Message);
    }
}
