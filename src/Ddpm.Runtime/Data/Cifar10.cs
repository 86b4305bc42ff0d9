namespace Ddpm.Data;

/// <summary>
/// The binary version of CIFAR-10 (<c>cifar-10-binary.tar.gz</c>, unpacked to
/// <c>cifar-10-batches-bin/</c>): files of 3073-byte records, each one label byte (0..9) followed by
/// 3072 pixel bytes, the 1024 red values of the 32x32 image row by row, then the 1024 green, then
/// the 1024 blue. That plane order is already [C, H, W], so records copy straight into an
/// <see cref="ImageSet"/> with 3 channels.
/// </summary>
public static class Cifar10
{
    /// <summary>Image height and width in pixels: 32.</summary>
    public const int Side = 32;
    /// <summary>Bytes per image: 3 channels of 32x32 (3072).</summary>
    public const int ImageBytes = 3 * Side * Side;
    /// <summary>Bytes per record in a batch file: one label byte and the image (3073).</summary>
    public const int RecordBytes = 1 + ImageBytes;

    /// <summary>The five training batch files (10,000 images each), in the order <see cref="Load"/> reads them.</summary>
    public static readonly IReadOnlyList<string> TrainFiles =
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

    /// <summary>The test batch file (10,000 images).</summary>
    public const string TestFile = "test_batch.bin";

    /// <summary>The names of labels 0..9.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>
    /// Loads the training set (the five data batches, in order) or the test batch from
    /// <paramref name="folder"/>, or from its <c>cifar-10-batches-bin</c> subfolder when the files are there.
    /// </summary>
    public static (ImageSet Images, byte[] Labels) Load(string folder, bool train = true)
    {
        const string subfolder = "cifar-10-batches-bin";
        if (!File.Exists(Path.Combine(folder, TestFile)) && Directory.Exists(Path.Combine(folder, subfolder)))
            folder = Path.Combine(folder, subfolder);
        IReadOnlyList<string> names = train ? TrainFiles : [TestFile];
        var files = names.Select(f => Path.Combine(folder, f)).ToList();
        var missing = files.Where(f => !File.Exists(f)).Select(Path.GetFileName).ToList();
        if (missing.Count > 0)
            throw new FileNotFoundException(
                $"CIFAR-10 binary files missing in {folder}: {string.Join(", ", missing)}. " +
                "Unpack the binary version (cifar-10-binary.tar.gz) there; its files are data_batch_1.bin .. data_batch_5.bin and test_batch.bin.");
        return ReadBatches(files);
    }

    /// <summary>Reads batch files one after another into one image set.</summary>
    public static (ImageSet Images, byte[] Labels) ReadBatches(IEnumerable<string> paths)
    {
        var list = paths.ToList();
        if (list.Count == 0) throw new ArgumentException("No CIFAR-10 batch files given.", nameof(paths));
        long total = 0;
        foreach (var path in list) total += RecordCount(path);
        if (total * ImageBytes > Array.MaxLength)
            throw new ArgumentException($"{total} CIFAR-10 images do not fit in one array.", nameof(paths));

        var pixels = new byte[total * ImageBytes];
        var labels = new byte[total];
        int offset = 0;
        foreach (var path in list)
            offset += ReadInto(path, pixels, labels, offset);
        return (new ImageSet(pixels, (int)total, 3, Side, Side), labels);
    }

    /// <summary>Reads one batch file.</summary>
    public static (ImageSet Images, byte[] Labels) ReadBatch(string path) => ReadBatches([path]);

    /// <summary>Writes images (3x32x32) and labels as one batch file, in the same record layout.</summary>
    public static void WriteBatch(string path, ImageSet images, ReadOnlySpan<byte> labels)
    {
        if (images.Channels != 3 || images.Height != Side || images.Width != Side)
            throw new ArgumentException($"CIFAR-10 images are 3x{Side}x{Side}, got {images.Channels}x{images.Height}x{images.Width}.", nameof(images));
        if (labels.Length != images.Count)
            throw new ArgumentException($"{labels.Length} labels for {images.Count} images.", nameof(labels));
        using var file = File.Create(path);
        for (int i = 0; i < images.Count; i++)
        {
            file.WriteByte(labels[i]);
            file.Write(images.Image(i));
        }
    }

    private static long RecordCount(string path)
    {
        long length = new FileInfo(path).Length;
        if (length == 0)
            throw DataFormat.Error(path, "the file is empty; expected 3073-byte CIFAR-10 records (1 label byte + 3072 pixel bytes).");
        if (length % RecordBytes != 0)
            throw DataFormat.Error(path,
                $"{length} bytes is not a whole number of 3073-byte CIFAR-10 records: {length / RecordBytes} whole records, " +
                $"then a truncated one of {length % RecordBytes} bytes. Is this the binary version of CIFAR-10 (not the Python or CIFAR-100 one)?");
        return length / RecordBytes;
    }

    private static int ReadInto(string path, byte[] pixels, byte[] labels, int first)
    {
        long count = RecordCount(path); // checked again: the file may have changed since the first pass
        using var file = File.OpenRead(path);
        var record = new byte[RecordBytes];
        for (int i = 0; i < count; i++)
        {
            int got = file.ReadAtLeast(record, RecordBytes, throwOnEndOfStream: false);
            if (got < RecordBytes)
                throw DataFormat.Error(path, $"record {i} is truncated: {got} of {RecordBytes} bytes.");
            if (record[0] > 9)
                throw DataFormat.Error(path, $"record {i} has label {record[0]}; CIFAR-10 labels are 0..9. Is this the binary version of CIFAR-10 (not CIFAR-100)?");
            labels[first + i] = record[0];
            record.AsSpan(1).CopyTo(pixels.AsSpan((first + i) * ImageBytes, ImageBytes));
        }
        return (int)count;
    }
}
