using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Runtime.Tests.Data;

namespace Ddpm.Runtime.Tests.Evaluation;

/// <summary>
/// A tiny labelled data set of 1x8x8 images in three classes (a bright row, a bright column, a bright 2x2 square,
/// each at a random place on a dim noisy background), written as MNIST-style IDX files with a classes.txt into a
/// temporary folder. <c>idx:&lt;folder&gt;</c> data sets cache their feature net in that folder, so nothing is
/// written anywhere else.
/// </summary>
internal static class LabelledFixture
{
    public const int Size = 8;
    public static readonly string[] ClassNames = ["row", "column", "square"];

    /// <summary><paramref name="count"/> images, labels cycling 0, 1, 2.</summary>
    public static (ImageSet Images, byte[] Labels) Make(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * Size * Size];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            var image = pixels.AsSpan(i * Size * Size, Size * Size);
            for (int p = 0; p < image.Length; p++) image[p] = (byte)random.Next(0, 40);
            int label = i % 3, a = random.Next(0, Size - 1), b = random.Next(0, Size - 1);
            labels[i] = (byte)label;
            for (int y = 0; y < Size; y++)
                for (int x = 0; x < Size; x++)
                {
                    bool on = label switch
                    {
                        0 => y == a,
                        1 => x == a,
                        _ => y >= a && y < a + 2 && x >= b && x < b + 2,
                    };
                    if (on) image[y * Size + x] = (byte)random.Next(200, 256);
                }
        }
        return (new ImageSet(pixels, count, 1, Size, Size), labels);
    }

    /// <summary>Writes the four IDX files (and classes.txt unless <paramref name="classNames"/> is false) into <paramref name="folder"/>.</summary>
    public static void Write(string folder, int train = 96, int test = 48, bool classNames = true, bool gzip = false)
    {
        string ext = gzip ? ".gz" : "";
        var (trainImages, trainLabels) = Make(train, seed: 1);
        var (testImages, testLabels) = Make(test, seed: 2);
        Idx.WriteImages(Path.Combine(folder, FashionMnist.TrainImagesFile + ext), trainImages);
        Idx.WriteLabels(Path.Combine(folder, FashionMnist.TrainLabelsFile + ext), trainLabels);
        Idx.WriteImages(Path.Combine(folder, FashionMnist.TestImagesFile + ext), testImages);
        Idx.WriteLabels(Path.Combine(folder, FashionMnist.TestLabelsFile + ext), testLabels);
        if (classNames) File.WriteAllLines(Path.Combine(folder, LabelledDatasets.ClassNamesFile), ClassNames);
    }

    /// <summary>The fixture loaded the way <c>ddpm eval --dataset idx:&lt;folder&gt;</c> loads it.</summary>
    public static LabelledDataset Load(TempFolder folder, int train = 96, int test = 48)
    {
        Write(folder.Path, train, test);
        return LabelledDatasets.Load("idx:" + folder.Path);
    }

    /// <summary>Small, fast training settings for the tests.</summary>
    public static readonly FeatureNetOptions QuickOptions = new(Epochs: 1, BatchSize: 16, LearningRate: 2e-3, Seed: 0);
}
