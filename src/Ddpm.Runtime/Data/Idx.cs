using System.Buffers.Binary;
using System.IO.Compression;

namespace Ddpm.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic number, then one int32 per
/// dimension) followed by the unsigned bytes. Images are <c>idx3-ubyte</c> ([count, rows, columns],
/// magic 0x00000803), labels <c>idx1-ubyte</c> ([count], magic 0x00000801). Files may be plain or
/// gzip-compressed; gzip is recognised by its magic bytes (1f 8b), not by the file name.
/// </summary>
/// <remarks>
/// Every read checks the header against the file before allocating anything, so a corrupt header
/// cannot ask for gigabytes, and every read checks the exact length, so a truncated download fails
/// with one <see cref="InvalidDataException"/> naming the file instead of yielding half a data set.
/// </remarks>
public static class Idx
{
    /// <summary>Magic number of an <c>idx3-ubyte</c> file: unsigned bytes, three dimensions.</summary>
    public const int ImagesMagic = 0x00000803;
    /// <summary>Magic number of an <c>idx1-ubyte</c> file: unsigned bytes, one dimension.</summary>
    public const int LabelsMagic = 0x00000801;

    // Deflate cannot expand data by more than about 1032:1; a gzip file whose header promises more
    // than this many times its own size is corrupt, and we say so before allocating.
    private const long MaxGzipExpansion = 1100;

    /// <summary>Reads an <c>idx3-ubyte</c> image file (plain or gzip) as a one-channel image set.</summary>
    public static ImageSet ReadImages(string path)
    {
        var (data, sizes) = Read(path, ImagesMagic, dimensions: 3);
        return new ImageSet(data, sizes[0], channels: 1, height: sizes[1], width: sizes[2]);
    }

    /// <summary>Reads an <c>idx1-ubyte</c> label file (plain or gzip).</summary>
    public static byte[] ReadLabels(string path) => Read(path, LabelsMagic, dimensions: 1).Data;

    /// <summary>Reads an image file and its label file, checking that they hold the same number of items.</summary>
    public static (ImageSet Images, byte[] Labels) Read(string imagesPath, string labelsPath)
    {
        var images = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath);
        if (labels.Length != images.Count)
            throw DataFormat.Error(labelsPath, $"holds {labels.Length} labels but {Path.GetFileName(imagesPath)} holds {images.Count} images.");
        return (images, labels);
    }

    /// <summary>Writes a one-channel image set as <c>idx3-ubyte</c>; gzip-compressed when the path ends in ".gz".</summary>
    public static void WriteImages(string path, ImageSet images)
    {
        if (images.Channels != 1)
            throw new ArgumentException($"IDX image files hold one channel; this set has {images.Channels}.", nameof(images));
        var header = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(0), ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), images.Count);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), images.Height);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), images.Width);
        Write(path, header, images.Pixels);
    }

    /// <summary>Writes labels as <c>idx1-ubyte</c>; gzip-compressed when the path ends in ".gz".</summary>
    public static void WriteLabels(string path, ReadOnlySpan<byte> labels)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(0), LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), labels.Length);
        Write(path, header, labels);
    }

    /// <summary>True when the file starts with the gzip magic bytes 1f 8b.</summary>
    public static bool IsGzip(string path)
    {
        using var file = File.OpenRead(path);
        return IsGzip(file);
    }

    private static bool IsGzip(FileStream file)
    {
        Span<byte> magic = stackalloc byte[2];
        int got = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        return got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }

    private static void Write(string path, ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        using var file = File.Create(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new GZipStream(file, CompressionLevel.Optimal)
            : file;
        stream.Write(header);
        stream.Write(data);
    }

    private static (byte[] Data, int[] Sizes) Read(string path, int magic, int dimensions)
    {
        using var file = File.OpenRead(path);
        long fileLength = file.Length;
        bool gzip = IsGzip(file);
        using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        string bytes = gzip ? "bytes (uncompressed)" : "bytes";
        var header = new byte[4 + 4 * dimensions];
        int got = ReadFully(stream, header, path);
        if (got < 4)
            throw DataFormat.Error(path, $"expected an IDX header of {header.Length} bytes, found {got} {bytes}.");
        int found = BinaryPrimitives.ReadInt32BigEndian(header);
        if (found != magic)
            throw DataFormat.Error(path, BadMagic(found, magic));
        if (got < header.Length)
            throw DataFormat.Error(path, $"expected an IDX header of {header.Length} bytes, found {got} {bytes}.");

        var sizes = new int[dimensions];
        long payload = 1;
        for (int d = 0; d < dimensions; d++)
        {
            sizes[d] = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 + 4 * d));
            if (sizes[d] < 1)
                throw DataFormat.Error(path, $"dimension {d} of the header is {sizes[d]}; every dimension must be at least 1.");
            payload *= sizes[d]; // at most (2^31)^3 < 2^93: checked against Array.MaxLength below before it can overflow
            if (payload > Array.MaxLength)
                throw DataFormat.Error(path, $"the header describes {What(sizes, d + 1)}, more than one array can hold; the header is corrupt.");
        }
        long expected = header.Length + payload;
        string what = What(sizes, dimensions);
        if (!gzip && fileLength != expected)
            throw DataFormat.Error(path, $"expected {expected} bytes for {what}, found {fileLength}.");
        if (gzip && expected > fileLength * MaxGzipExpansion)
            throw DataFormat.Error(path, $"the header describes {what} ({expected} bytes), more than a {fileLength}-byte gzip file can hold; the header is corrupt.");

        var data = new byte[payload];
        int read = ReadFully(stream, data, path);
        if (read < data.Length)
            throw DataFormat.Error(path, $"expected {expected} {bytes} for {what}, found {header.Length + read}.");
        if (gzip)
        {
            long extra = CountRemaining(stream, path);
            if (extra > 0)
                throw DataFormat.Error(path, $"expected {expected} {bytes} for {what}, found {expected + extra}.");
        }
        return (data, sizes);
    }

    // GZipStream reports corrupt data as InvalidDataException without the file name; add it.
    private static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        try { return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false); }
        catch (InvalidDataException e) { throw DataFormat.Error(path, $"corrupt gzip data: {e.Message}", e); }
    }

    private static long CountRemaining(Stream stream, string path)
    {
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = ReadFully(stream, buffer, path)) > 0) total += n;
        return total;
    }

    private static string What(int[] sizes, int known) => sizes.Length == 3
        ? known == 3 ? $"{sizes[0]} images of {sizes[1]}x{sizes[2]}" : $"{sizes[0]} images"
        : $"{sizes[0]} labels";

    private static string BadMagic(int found, int expected)
    {
        string hint = found switch
        {
            LabelsMagic => " (an IDX label file, not images)",
            ImagesMagic => " (an IDX image file, not labels)",
            _ => "",
        };
        string kind = expected == ImagesMagic ? "image" : "label";
        return $"bad magic number 0x{found:x8}{hint}; an IDX {kind} file starts with 0x{expected:x8}.";
    }
}
