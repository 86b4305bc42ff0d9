using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a UTF-8 JSON header mapping each tensor's name to its
/// dtype, shape and data_offsets (plus an optional "__metadata__" of string values), then the tensors' raw little-endian
/// bytes. Written here rather than through TorchSharp.PyBridge, whose writer takes no metadata and whose reader drops it
/// (docs/interop.md).
/// </summary>
internal static class Safetensors
{
    private const string MetadataKey = "__metadata__";
    // A header this large is not a weights file of any model Ddpm builds; it is refused before it is allocated.
    private const long MaxHeaderBytes = 100L << 20;

    private static readonly (string Name, ScalarType Type)[] DTypes =
    {
        ("F64", ScalarType.Float64), ("F32", ScalarType.Float32), ("F16", ScalarType.Float16), ("BF16", ScalarType.BFloat16),
        ("I64", ScalarType.Int64), ("I32", ScalarType.Int32), ("I16", ScalarType.Int16), ("I8", ScalarType.Int8),
        ("U8", ScalarType.Byte), ("BOOL", ScalarType.Bool),
    };

    public static string DTypeName(ScalarType type)
    {
        foreach (var (name, t) in DTypes)
            if (t == type) return name;
        throw new NotSupportedException($"safetensors has no dtype for {type}.");
    }

    /// <summary>Writes <paramref name="tensors"/> in their order, with <paramref name="metadata"/> as "__metadata__".</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        EnsureLittleEndian();
        var header = new MemoryStream();
        long offset = 0;
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            foreach (var (name, value) in tensors)
            {
                long length = value.NumberOfElements * value.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", DTypeName(value.dtype));
                json.WriteStartArray("shape");
                foreach (long size in value.shape) json.WriteNumberValue(size);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += length;
            }
            json.WriteEndObject();
        }
        // Padded with spaces to a multiple of 8, as the reference implementation does, so the data starts aligned.
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');
        Span<byte> length8 = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length8, (ulong)header.Length);
        stream.Write(length8);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var (_, value) in tensors)
        {
            using var cpu = value.detach().cpu().contiguous();
            stream.Write(cpu.bytes);
        }
    }

    /// <summary>Reads every tensor (in the header's order) and the metadata; the caller owns the tensors.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed safetensors file.</exception>
    public static (List<(string Name, Tensor Value)> Tensors, Dictionary<string, string> Metadata) Read(byte[] bytes)
    {
        EnsureLittleEndian();
        if (bytes.Length < 8) throw new InvalidDataException($"is {bytes.Length} bytes, shorter than the 8-byte header length of a safetensors file.");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.LongLength - 8))
            throw new InvalidDataException($"is not a safetensors file: its first 8 bytes promise a {headerLength}-byte header in a {bytes.LongLength}-byte file.");
        if (headerLength > MaxHeaderBytes)
            throw new InvalidDataException($"has a {headerLength:N0}-byte safetensors header, more than the {MaxHeaderBytes:N0} bytes (100 MiB) ddpm reads; " +
                                           "the header of a weights file of any model Ddpm builds is far smaller.");
        int dataStart = 8 + (int)headerLength;
        long dataLength = bytes.LongLength - dataStart;

        JsonDocument document;
        try { document = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength)); }
        catch (JsonException e) { throw new InvalidDataException($"has a safetensors header that is not JSON: {e.Message}", e); }
        using var _ = document;
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException("has a safetensors header that is not a JSON object.");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<(string Name, ScalarType Type, long[] Shape, long Begin, long End)>();
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (property.Name == MetadataKey)
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException("has a safetensors __metadata__ that is not an object of strings.");
                foreach (var item in property.Value.EnumerateObject())
                    metadata[item.Name] = item.Value.ValueKind == JsonValueKind.String
                        ? item.Value.GetString()!
                        : throw new InvalidDataException($"has a safetensors __metadata__ value '{item.Name}' that is not a string.");
                continue;
            }
            entries.Add(Entry(property, dataLength));
        }

        // The tensors' bytes must tile the data section exactly (the format forbids holes and overlaps).
        long expected = 0;
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin != expected)
                throw new InvalidDataException($"has tensor '{entry.Name}' at bytes {entry.Begin}..{entry.End} of the data, where {expected} was next: the offsets leave a hole or overlap.");
            expected = entry.End;
        }
        if (expected != dataLength)
            throw new InvalidDataException($"has {dataLength} bytes of tensor data, but its header describes {expected}.");

        var tensors = new List<(string, Tensor)>(entries.Count);
        try
        {
            foreach (var (name, type, shape, begin, end) in entries)
            {
                var tensor = empty(shape, type);
                tensors.Add((name, tensor));
                bytes.AsSpan(checked(dataStart + (int)begin), checked((int)(end - begin))).CopyTo(tensor.bytes);
            }
        }
        catch
        {
            foreach (var (_, tensor) in tensors) tensor.Dispose();
            throw;
        }
        return (tensors, metadata);
    }

    private static (string Name, ScalarType Type, long[] Shape, long Begin, long End) Entry(JsonProperty property, long dataLength)
    {
        string name = property.Name;
        var value = property.Value;
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new InvalidDataException($"has a safetensors entry '{name}' without dtype, shape and data_offsets [begin, end].");
        string dtypeName = dtype.GetString()!;
        int index = Array.FindIndex(DTypes, d => d.Name == dtypeName);
        if (index < 0)
            throw new InvalidDataException($"has tensor '{name}' of dtype {dtypeName}, which Ddpm does not read ({string.Join(", ", DTypes.Select(d => d.Name))}).");
        var type = DTypes[index].Type;
        long[] sizes = shape.EnumerateArray().Select(s => s.TryGetInt64(out long v) && v >= 0 ? v : -1).ToArray();
        if (sizes.Any(s => s < 0)) throw new InvalidDataException($"has tensor '{name}' with a shape that is not a list of sizes >= 0.");
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new InvalidDataException($"has tensor '{name}' with data_offsets that are not [begin, end] with 0 <= begin <= end.");
        // The shape's byte count, before anything is allocated (overflow-safe); a count that fits is checked against the
        // tensor's data_offsets below, and those against the data section.
        long bytesNeeded = StoredTensor.Bytes(sizes, StoredTensor.ElementSize(type)!.Value)
            ?? throw new InvalidDataException($"has tensor '{name}' ({dtypeName} [{string.Join(", ", sizes)}]) whose shape needs more bytes than the " +
                                              $"{dataLength:N0} bytes of tensor data in the file.");
        if (end - begin != bytesNeeded)
            throw new InvalidDataException($"has tensor '{name}' ({dtypeName} [{string.Join(", ", sizes)}], {bytesNeeded} bytes) stored in {end - begin} bytes.");
        return (name, type, sizes, begin, end);
    }

    private static void EnsureLittleEndian()
    {
        // Tensor bytes are copied as they lie in memory; safetensors stores them little-endian.
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors files are read and written on little-endian machines only.");
    }
}
