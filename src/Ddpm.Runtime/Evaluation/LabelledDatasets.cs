using Ddpm.Data;

namespace Ddpm.Evaluation;

/// <summary>Turns a data set name into its labelled train and test splits, for evaluation.</summary>
public static class LabelledDatasets
{
    /// <summary>The data sets evaluation accepts, worded to follow an error message.</summary>
    public const string Help = "use fashion-mnist, mnist, idx:<folder> (MNIST-style IDX files; mnist-idx:<folder> is the same) or cifar10:<folder>";

    /// <summary>File that may name an IDX data set's classes, one per line, in label order.</summary>
    public const string ClassNamesFile = Datasets.ClassNamesFile;

    /// <summary>
    /// Loads <paramref name="dataset"/>: <c>fashion-mnist</c> or <c>mnist</c> (fetched into the cache if needed),
    /// <c>idx:&lt;folder&gt;</c> (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    /// t10k-labels-idx1-ubyte, plain or .gz; class names from classes.txt, else the label numbers) or
    /// <c>cifar10:&lt;folder&gt;</c> (the binary version). Anything else is an <see cref="ArgumentException"/>.
    /// </summary>
    public static LabelledDataset Load(string dataset, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataset);
        string kind = dataset, argument = "";
        int colon = dataset.IndexOf(':');
        if (colon > 0)
        {
            kind = dataset[..colon];
            argument = dataset[(colon + 1)..];
        }
        var loaded = kind.ToLowerInvariant() switch
        {
            "fashion-mnist" => FashionMnistSplits(dataset, log),
            "mnist" => MnistSplits(dataset, log),
            "idx" or "mnist-idx" => IdxSplits(dataset, Datasets.RequireFolder(argument, dataset)),
            "cifar10" => Cifar10Splits(dataset, Datasets.RequireFolder(argument, dataset)),
            "images" or "synthetic" => throw new ArgumentException(
                $"Dataset '{dataset}' has no class labels, and evaluation needs a labelled data set ({Help}).", nameof(dataset)),
            _ => throw new ArgumentException($"Unknown dataset '{dataset}' for evaluation: {Help}.", nameof(dataset)),
        };
        return loaded.Validated();
    }

    private static LabelledDataset FashionMnistSplits(string name, Action<string>? log)
    {
        var (trainImages, trainLabels) = FashionMnist.Load(train: true, log: log);
        var (testImages, testLabels) = FashionMnist.Load(train: false);
        return new LabelledDataset(name, trainImages, trainLabels, testImages, testLabels, FashionMnist.ClassNames,
                                   FlipInvariant: true, FashionMnist.CacheFolder());
    }

    private static LabelledDataset MnistSplits(string name, Action<string>? log)
    {
        var (trainImages, trainLabels) = Mnist.Load(train: true, log: log);
        var (testImages, testLabels) = Mnist.Load(train: false);
        return new LabelledDataset(name, trainImages, trainLabels, testImages, testLabels, Mnist.ClassNames,
                                   FlipInvariant: false, Mnist.CacheFolder());
    }

    private static LabelledDataset IdxSplits(string name, string folder)
    {
        string Find(string file)
        {
            string plain = Path.Combine(folder, file);
            if (File.Exists(plain)) return plain;
            if (File.Exists(plain + ".gz")) return plain + ".gz";
            throw new FileNotFoundException(
                $"Dataset '{name}': {file}[.gz] is missing in {folder}; an IDX data set for evaluation needs " +
                $"{FashionMnist.TrainImagesFile}, {FashionMnist.TrainLabelsFile}, {FashionMnist.TestImagesFile} and {FashionMnist.TestLabelsFile}.");
        }
        var (trainImages, trainLabels) = Idx.Read(Find(FashionMnist.TrainImagesFile), Find(FashionMnist.TrainLabelsFile));
        var (testImages, testLabels) = Idx.Read(Find(FashionMnist.TestImagesFile), Find(FashionMnist.TestLabelsFile));
        var classes = Datasets.IdxClassNames(folder, trainLabels, testLabels);
        return new LabelledDataset(name, trainImages, trainLabels, testImages, testLabels, classes, FlipInvariant: false, folder);
    }

    private static LabelledDataset Cifar10Splits(string name, string folder)
    {
        var (trainImages, trainLabels) = Cifar10.Load(folder, train: true);
        var (testImages, testLabels) = Cifar10.Load(folder, train: false);
        return new LabelledDataset(name, trainImages, trainLabels, testImages, testLabels, Cifar10.ClassNames, FlipInvariant: true, folder);
    }
}
