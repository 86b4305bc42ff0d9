using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Ddpm.Data;

/// <summary>
/// Reads NumPy's .npy files (format versions 1-3): the header's dtype, order and shape, then the raw array.
/// Enough for images saved by <c>np.save</c>: uint8, float32 and float64, little-endian, C order. The format is a
/// short text header plus raw bytes (numpy's NEP 1); no NuGet reader fits (NumSharp reads only into its own arrays).
/// </summary>
public static partial class Npy
{
    private static readonly byte[] Magic = { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    /// <summary>An array as doubles (any supported dtype), with its dtype and shape.</summary>
    /// <param name="DType">The stored dtype without its byte-order mark: "u1", "f4" or "f8".</param>
    /// <param name="Shape">The array's shape, outermost dimension first (C order).</param>
    /// <param name="Values">Every element in C order, converted to double.</param>
    public sealed record NpyArray(string DType, long[] Shape, double[] Values)
    {
        /// <summary>Number of elements: the product of <see cref="Shape"/>.</summary>
        public long Count => Values.LongLength;
    }

    /// <summary>Reads <paramref name="path"/>; one <see cref="InvalidDataException"/> that names the file and the problem otherwise.</summary>
    public static NpyArray Read(string path) => Read(path, null);

    /// <summary>
    /// As <see cref="Read(string)"/>; <paramref name="checkShape"/> sees the header's shape before any element is read (a
    /// reader of images checks their size there, <see cref="Ddpm.Imaging.ImageLimits"/>).
    /// </summary>
    internal static NpyArray Read(string path, Action<long[]>? checkShape)
    {
        using var stream = File.OpenRead(path);
        try { return Read(stream, checkShape); }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path + ": ", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{path}: the file ends before its array does.", e); }
    }

    /// <summary>Reads one .npy array from the current position of <paramref name="stream"/>, which stays open.</summary>
    /// <exception cref="InvalidDataException">The data is not a .npy array this reader supports.</exception>
    /// <exception cref="EndOfStreamException">The stream ends inside the header.</exception>
    public static NpyArray Read(Stream stream) => Read(stream, null);

    private static NpyArray Read(Stream stream, Action<long[]>? checkShape)
    {
        using var reader = new BinaryReader(stream, Encoding.Latin1, leaveOpen: true);
        var magic = reader.ReadBytes(Magic.Length);
        if (!magic.AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException("not a .npy file (no \\x93NUMPY magic).");
        byte major = reader.ReadByte();
        reader.ReadByte(); // minor
        long headerLength = major switch
        {
            1 => reader.ReadUInt16(),
            2 or 3 => reader.ReadUInt32(),
            _ => throw new InvalidDataException($".npy format version {major} is not supported (1, 2 or 3)."),
        };
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(reader.ReadBytes(checked((int)headerLength)));

        string descr = Field(header, "descr") ?? throw new InvalidDataException($"header has no 'descr': {header.Trim()}");
        if (Field(header, "fortran_order") is "True")
            throw new InvalidDataException("the array is in Fortran order; save it with np.ascontiguousarray first.");
        var shapeMatch = ShapePattern().Match(header);
        if (!shapeMatch.Success) throw new InvalidDataException($"header has no 'shape': {header.Trim()}");
        long[] shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(d => long.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n
                : throw new InvalidDataException($"the shape ({shapeMatch.Groups[1].Value}) holds '{d}', not a size."))
            .ToArray();
        long count = 1;
        foreach (long dimension in shape)
            count = count <= long.MaxValue / Math.Max(dimension, 1) ? count * dimension
                : throw new InvalidDataException($"the shape ({shapeMatch.Groups[1].Value}) has too many elements.");

        string dtype = descr.Trim('\'', '"');
        int size = dtype switch
        {
            "|u1" or "u1" or "<u1" => 1,
            "<f4" => 4,
            "<f8" => 8,
            _ => throw new InvalidDataException($"dtype '{dtype}' is not supported: save uint8, float32 or float64 (little-endian)."),
        };
        checkShape?.Invoke(shape);
        if (count > Array.MaxLength / Math.Max(size, 8))
            throw new InvalidDataException($"the array has {count:N0} elements, too many to read.");
        // A header may promise more than the file holds: nothing is allocated for bytes that are not there.
        if (stream.CanSeek && stream.Length - stream.Position < count * size)
            throw new InvalidDataException($"the array should hold {count * size:N0} bytes after its header, but the file has {stream.Length - stream.Position:N0}.");
        var bytes = reader.ReadBytes(checked((int)(count * size)));
        if (bytes.LongLength != count * size)
            throw new InvalidDataException($"the array should hold {count * size:N0} bytes after its header, but the file has {bytes.LongLength:N0}.");
        var values = new double[count];
        for (long i = 0; i < count; i++)
            values[i] = size switch
            {
                1 => bytes[i],
                4 => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(i * 4), 4)),
                _ => BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan((int)(i * 8), 8)),
            };
        return new NpyArray(dtype.TrimStart('|', '<'), shape, values);
    }

    /// <summary>Writes a C-order array (uint8 or float32) so tests and tools can make fixtures.</summary>
    public static void Write(string path, long[] shape, byte[] values) => Write(path, "|u1", shape, values);

    /// <summary>Writes a C-order float32 array (little-endian) as a version 1.0 .npy file.</summary>
    public static void Write(string path, long[] shape, float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        Write(path, "<f4", shape, bytes);
    }

    private static void Write(string path, string descr, long[] shape, byte[] data)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = Magic.Length + 4 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n"; // the data starts on a 64-byte boundary
        using var stream = File.Create(path);
        stream.Write(Magic);
        stream.Write(new byte[] { 1, 0 });
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.Latin1.GetBytes(header));
        stream.Write(data);
    }

    private static string? Field(string header, string key)
    {
        var match = Regex.Match(header, $@"['""]{key}['""]\s*:\s*('[^']*'|""[^""]*""|True|False)");
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex(@"['""]shape['""]\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
