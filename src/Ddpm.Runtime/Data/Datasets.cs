namespace Ddpm.Data;

/// <summary>Turns a spec's `dataset:` value into images of the model's shape.</summary>
public static class Datasets
{
    /// <summary>The accepted `dataset:` values, worded to follow an error message.</summary>
    public const string Help = "use fashion-mnist, mnist, idx:<folder> (MNIST-style IDX files; mnist-idx:<folder> is the same), cifar10:<folder>, images:<folder> or synthetic";

    /// <summary>Loads the training images named by <paramref name="dataset"/> and checks they fit the model.</summary>
    public static ImageSet Load(string dataset, int channels, int imageSize, Action<string>? log = null)
    {
        var (kind, argument) = Split(dataset);
        ImageSet images = kind switch
        {
            "fashion-mnist" => Labelled(FashionMnist.Load(train: true, log: log), FashionMnist.ClassNames),
            "mnist" => Labelled(Mnist.Load(train: true, log: log), Mnist.ClassNames),
            "idx" or "mnist-idx" => IdxTraining(RequireFolder(argument, dataset)),
            "cifar10" => Labelled(Cifar10.Load(RequireFolder(argument, dataset), train: true), Cifar10.ClassNames),
            "images" => ImageFolder.Load(RequireFolder(argument, dataset), imageSize, channels, log),
            "synthetic" => Synthetic(channels, imageSize, count: 512),
            _ => throw new ArgumentException($"Unknown dataset '{dataset}': {Help}.", nameof(dataset)),
        };
        if (images.Channels != channels || images.Height != imageSize || images.Width != imageSize)
            throw new ArgumentException(
                $"Dataset '{dataset}' has {images.Channels}x{images.Height}x{images.Width} images, but the model expects {channels}x{imageSize}x{imageSize}; " +
                "use a matching model or an images:<folder> dataset, which is resized.", nameof(dataset));
        return images;
    }

    /// <summary>The classes of the synthetic data set, in label order.</summary>
    public static readonly IReadOnlyList<string> SyntheticClassNames = new[] { "vertical bar", "horizontal bar", "box" };

    /// <summary>
    /// The class names a data set defines without reading it (fashion-mnist, mnist, cifar10, synthetic); null for the others, whose
    /// classes come from their files (classes.txt of an IDX folder, the subfolders of an image folder).
    /// </summary>
    public static IReadOnlyList<string>? KnownClassNames(string dataset)
    {
        return Split(dataset).Kind switch
        {
            "fashion-mnist" => FashionMnist.ClassNames,
            "mnist" => Mnist.ClassNames,
            "cifar10" => Cifar10.ClassNames,
            "synthetic" => SyntheticClassNames,
            _ => null,
        };
    }

    /// <summary>
    /// Bars and boxes at random positions and brightness: a tiny data set with visible structure, for smoke runs and tests
    /// that must not read files. Labelled by shape (<see cref="SyntheticClassNames"/>), so conditional models can train on it.
    /// </summary>
    public static ImageSet Synthetic(int channels, int imageSize, int count, int seed = 0)
    {
        var random = new Random(seed);
        int pixels = channels * imageSize * imageSize;
        var data = new byte[count * pixels];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            var image = data.AsSpan(i * pixels, pixels);
            int shape = random.Next(3);
            labels[i] = (byte)shape;
            int a = random.Next(imageSize / 2), b = random.Next(imageSize / 2) + imageSize / 2;
            byte level = (byte)random.Next(160, 256);
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < imageSize; y++)
                    for (int x = 0; x < imageSize; x++)
                    {
                        bool on = shape switch
                        {
                            0 => y >= a && y < b && x >= imageSize / 2 - 1 && x <= imageSize / 2, // vertical bar
                            1 => x >= a && x < b && y >= imageSize / 2 - 1 && y <= imageSize / 2, // horizontal bar
                            _ => x >= a && x < b && y >= a && y < b,                              // box
                        };
                        image[(c * imageSize + y) * imageSize + x] = on ? level : (byte)0;
                    }
        }
        return new ImageSet(data, count, channels, imageSize, imageSize).WithLabels(labels, SyntheticClassNames);
    }

    private static ImageSet Labelled((ImageSet Images, byte[] Labels) split, IReadOnlyList<string> names) =>
        split.Images.WithLabels(split.Labels, names);

    /// <summary>An IDX folder's training images, labelled when its labels file is there (class names from classes.txt, else the numbers).</summary>
    private static ImageSet IdxTraining(string folder)
    {
        string images = FindIdxImages(folder);
        string? labels = Directory.EnumerateFiles(folder, "train-labels-idx1-ubyte*").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault();
        if (labels is null) return Idx.ReadImages(images);
        var (set, classes) = Idx.Read(images, labels);
        return set.WithLabels(classes, IdxClassNames(folder, classes));
    }

    /// <summary>File that may name an IDX data set's classes, one per line, in label order.</summary>
    public const string ClassNamesFile = "classes.txt";

    /// <summary>An IDX folder's class names: the lines of classes.txt, else the label numbers up to the largest label seen.</summary>
    internal static IReadOnlyList<string> IdxClassNames(string folder, params byte[][] labels)
    {
        string namesPath = Path.Combine(folder, ClassNamesFile);
        if (File.Exists(namesPath))
            return File.ReadAllLines(namesPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        int count = Math.Max(2, labels.Max(l => l.Length == 0 ? 0 : l.Max()) + 1);
        return Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>"cifar10:data/c" -> ("cifar10", "data/c"): the kind in lower case and the text after the first colon.</summary>
    private static (string Kind, string Argument) Split(string dataset)
    {
        int colon = dataset.IndexOf(':');
        return colon > 0 ? (dataset[..colon].ToLowerInvariant(), dataset[(colon + 1)..]) : (dataset.ToLowerInvariant(), "");
    }

    internal static string RequireFolder(string argument, string dataset)
    {
        if (argument.Length == 0)
            throw new ArgumentException($"Dataset '{dataset}' needs a folder, e.g. {dataset.TrimEnd(':')}:data/my-images.", nameof(dataset));
        string folder = Environment.ExpandEnvironmentVariables(argument.StartsWith("~/")
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), argument[2..])
            : argument);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Dataset folder '{folder}' (from '{dataset}') does not exist.");
        return folder;
    }

    private static string FindIdxImages(string folder)
    {
        string? file = Directory.EnumerateFiles(folder, "train-images-idx3-ubyte*").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault();
        return file ?? throw new FileNotFoundException($"No train-images-idx3-ubyte[.gz] in '{folder}'.");
    }
}
