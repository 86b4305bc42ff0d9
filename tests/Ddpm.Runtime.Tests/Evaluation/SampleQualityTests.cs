using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Runtime.Tests.Data;
using Ddpm.Runtime.Tests.Training;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Evaluation;

/// <summary>The 8x8 fixture with its feature net trained once (eight quick epochs) for all the tests of the class.</summary>
public sealed class SampleQualityFixture : IDisposable
{
    public static readonly QualitySettings Settings = new(KidSubsets: 10, KidSubsetSize: 30, NearestK: 3, BatchSize: 20, FloorSeed: 0,
                                                           FeatureNet: LabelledFixture.QuickOptions with { Epochs = 8 });

    public SampleQualityFixture()
    {
        Folder = new TempFolder();
        LabelledFixture.Write(Folder.Path);
        Quality = SampleQuality.Create("idx:" + Folder.Path, Log.Add, Settings);
    }

    public TempFolder Folder { get; }
    public SampleQuality Quality { get; }
    public List<string> Log { get; } = [];

    public void Dispose()
    {
        Quality.Dispose();
        Folder.Dispose();
    }
}

[Collection(TrainingCollection.Name)]
public class SampleQualityTests(SampleQualityFixture fixture) : IClassFixture<SampleQualityFixture>
{
    private SampleQuality Quality => fixture.Quality;

    private static ImageSet Pick(ImageSet set, IReadOnlyList<int> rows)
    {
        var pixels = rows.SelectMany(r => set.Image(r).ToArray()).ToArray();
        return new ImageSet(pixels, rows.Count, set.Channels, set.Height, set.Width);
    }

    /// <summary>Uniform noise images in [-1, 1], from System.Random.</summary>
    private static Tensor Noise(int n, int seed)
    {
        var random = new Random(seed);
        var values = Enumerable.Range(0, n * 64).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        return tensor(values, [n, 1, 8, 8]);
    }

    [Fact]
    public void Describes_the_data_set_and_its_cached_feature_net()
    {
        Assert.Equal("idx:" + fixture.Folder.Path, Quality.Dataset);
        Assert.Equal((1, 8), (Quality.Channels, Quality.ImageSize));
        Assert.Equal(LabelledFixture.ClassNames, Quality.ClassNames);
        Assert.Equal(Path.Combine(fixture.Folder.Path, FeatureNetCache.FileName), Quality.FeatureNetPath);
        Assert.Equal(SampleQualityFixture.Settings.FeatureNetOptions, Quality.FeatureNet.Options);
        Assert.Contains("feature net: reference statistics of 48 test images ready", fixture.Log);

        var (net, info) = FeatureNetCache.Read(Quality.FeatureNetPath);
        using (net)
        {
            Assert.Equal(FeatureNetTrainer.Accuracy(net, Quality.Data.TestImages, Quality.Data.TestLabels), Quality.ClassifierAccuracy);
            Assert.Equal(info.TestAccuracy, Quality.ClassifierAccuracy);
        }
        // Three easy classes: eight quick epochs learn them well beyond chance (1/3).
        Assert.InRange(Quality.ClassifierAccuracy, 0.6, 1.0);
    }

    [Fact]
    public void Floor_is_computed_once_per_n_and_reproduced_by_a_fresh_instance()
    {
        var floor = Quality.Floor(12);
        Assert.Same(floor, Quality.Floor(12));
        Assert.Null(floor.Floor);
        Assert.Equal((12, 48, 10, 12, 3, 0), (floor.Count, floor.ReferenceCount, floor.KidSubsets, floor.KidSubsetSize, floor.NearestK, floor.Seed));
        Assert.Equal(12, floor.Classes.Total);

        // A second instance loads the cached net and computes the same floor, bit for bit.
        var log = new List<string>();
        using var again = SampleQuality.Create("idx:" + fixture.Folder.Path, log.Add, SampleQualityFixture.Settings);
        Assert.StartsWith("feature net: using ", log[0]);
        Assert.Equal(floor, again.Floor(12));

        // More than the training split holds: all of it.
        Assert.Equal(96, Quality.Floor(500).Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => Quality.Floor(3));
    }

    [Fact]
    public void Scoring_the_floors_own_training_images_gives_the_floor_exactly()
    {
        const int n = 20;
        var rows = KernelDistance.Draw(new Random(SampleQualityFixture.Settings.FloorSeed), Quality.Data.TrainImages.Count, n);
        var images = Pick(Quality.Data.TrainImages, rows);

        var fromBytes = Quality.Score(images, seed: SampleQualityFixture.Settings.FloorSeed);
        var floor = Quality.Floor(n);
        Assert.Equal(floor, fromBytes with { Floor = null });
        Assert.Same(floor, fromBytes.Floor);

        // The same images as float tensors in [-1, 1] score exactly as their bytes do (one road through ImageLevels).
        using var floats = ImageLevels.FromBytes(images, rows.Select((_, i) => i).ToArray());
        Assert.Equal(fromBytes, Quality.Score(floats, seed: SampleQualityFixture.Settings.FloorSeed));
    }

    [Fact]
    public void Other_training_images_score_near_the_floor_and_noise_far_worse()
    {
        const int n = 24;
        var floorRows = KernelDistance.Draw(new Random(SampleQualityFixture.Settings.FloorSeed), Quality.Data.TrainImages.Count, n);
        var otherRows = Enumerable.Range(0, Quality.Data.TrainImages.Count).Except(floorRows).Take(n).ToArray();
        var real = Quality.Score(Pick(Quality.Data.TrainImages, otherRows), seed: 1);
        using var noiseImages = Noise(n, seed: 3);
        var noise = Quality.Score(noiseImages, seed: 1);
        var floor = real.Floor!;

        Assert.Equal(n, noise.Count);
        Assert.Equal(floor, noise.Floor);
        // Other real images land near the floor on the scale from the floor to noise; noise lands far beyond both.
        string values = $"FID real {real.Fid}, floor {floor.Fid}, noise {noise.Fid}; KID real {real.KidMean}, floor {floor.KidMean}, noise {noise.KidMean}; " +
                        $"precision real {real.Precision}, floor {floor.Precision}, noise {noise.Precision}";
        Assert.True(Math.Abs(real.Fid - floor.Fid) < 0.1 * (noise.Fid - floor.Fid), values);
        Assert.True(noise.Fid > 10 * Math.Max(real.Fid, floor.Fid), values);
        Assert.True(Math.Abs(real.KidMean - floor.KidMean) < 0.1 * (noise.KidMean - floor.KidMean), values);
        Assert.True(noise.Precision < real.Precision, values);
        Assert.InRange(real.Precision, 0.5, 1.0);
    }

    [Fact]
    public void Scores_depend_on_the_kid_seed_only_through_kid()
    {
        using var images = Noise(16, seed: 4);
        var a = Quality.Score(images, seed: 1);
        var b = Quality.Score(images, seed: 2);
        Assert.Equal(a with { KidMean = 0, KidStd = 0, Seed = 0 }, b with { KidMean = 0, KidStd = 0, Seed = 0 });
        Assert.NotEqual(a.KidMean, b.KidMean); // 16 of 48 reference vectors per subset: other subsets
        Assert.Equal(a, Quality.Score(images, seed: 1));
    }

    [Fact]
    public void Wrong_shapes_and_too_few_images_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => Quality.Score(zeros(5, 3, 8, 8), seed: 0));
        Assert.Throws<ArgumentException>(() => Quality.Score(zeros(5, 1, 16, 16), seed: 0));
        Assert.Throws<ArgumentException>(() => Quality.Score(zeros(5, 1, 8), seed: 0));
        var e = Assert.Throws<ArgumentException>(() => Quality.Score(zeros(3, 1, 8, 8), seed: 0));
        Assert.Equal("3 images cannot be scored: FID and KID need at least 2, precision and recall (k = 3) at least 4.", e.Message);
        Assert.Throws<ArgumentException>(() => Quality.Score(new ImageSet(new byte[3 * 64], 3, 1, 8, 8), seed: 0));
    }
}
