using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>
/// Reads the pickle of a <c>torch.save</c> zip file with a fixed vocabulary: plain containers (dict, OrderedDict, list,
/// tuple, numbers, strings) and PyTorch's tensor rebuild functions over the archive's storages. Nothing named in the
/// pickle is ever called: any other global is refused when it is named, before anything uses it. Tensors come back as
/// <see cref="PickledTensor"/> descriptions (storage, offset, shape, strides), made into tensors by
/// <see cref="Materialize"/> once their names are known.
/// </summary>
internal sealed class StateDictUnpickler
{
    // A state dict's pickle holds names and shapes only (the numbers are in the storages): far below this.
    private const int MaxPickleBytes = 64 << 20;

    /// <summary>A storage of the archive (data/KEY): its dtype and element count, read once however many tensors view it.</summary>
    internal sealed record PickledStorage(string Key, ScalarType Type, int ElementSize, long Elements);

    /// <summary>A tensor as pickled: a view of <paramref name="Storage"/> at <paramref name="Offset"/> (in elements) with sizes and strides.</summary>
    internal sealed record PickledTensor(PickledStorage Storage, long Offset, long[] Shape, long[] Stride);

    /// <summary>A Python dict or OrderedDict, in insertion order.</summary>
    internal sealed class PickledDict : List<KeyValuePair<object?, object?>> { }

    private sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    private sealed class Mark;

    private readonly ZipArchive archive;
    private readonly string prefix;
    private readonly Dictionary<string, PickledStorage> storages = new(StringComparer.Ordinal);

    private StateDictUnpickler(ZipArchive archive, string prefix)
    {
        this.archive = archive;
        this.prefix = prefix;
    }

    /// <summary>Reads the archive's data.pkl; returns its top-level object and the unpickler that knows its storages.</summary>
    /// <exception cref="InvalidDataException">The archive or its pickle is malformed, or the pickle names anything outside the vocabulary.</exception>
    public static (object? Root, StateDictUnpickler Reader) Load(ZipArchive archive)
    {
        var pickle = archive.Entries.Where(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                                    .OrderBy(e => e.FullName.Length).FirstOrDefault()
            ?? throw new InvalidDataException("is a zip file without data.pkl, so not a file of torch.save.");
        string prefix = pickle.FullName[..^"data.pkl".Length];
        if (archive.GetEntry(prefix + "byteorder") is { } order)
        {
            using var text = new StreamReader(order.Open(), Encoding.ASCII);
            string byteOrder = text.ReadToEnd().Trim();
            if (byteOrder != "little")
                throw new InvalidDataException($"stores its tensors in {byteOrder}-endian byte order; ddpm reads little-endian files (save it on a little-endian machine).");
        }
        var reader = new StateDictUnpickler(archive, prefix);
        return (reader.Run(ReadEntry(pickle, MaxPickleBytes, "data.pkl")), reader);
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry, int limit, string what)
    {
        if (entry.Length > limit)
            throw new InvalidDataException($"has a {what} of {entry.Length:N0} bytes, more than the {limit:N0} ddpm reads.");
        var bytes = new byte[entry.Length];
        using var stream = entry.Open();
        int read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (read != bytes.Length) throw new InvalidDataException($"has a {what} cut short: {read} of {bytes.Length} bytes.");
        return bytes;
    }

    private object? Run(byte[] pickle)
    {
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object?>();
        int at = 0;

        ReadOnlySpan<byte> Take(int count)
        {
            if (count < 0 || count > pickle.Length - at)
                throw new InvalidDataException($"has a pickle cut short at byte {at} (data.pkl).");
            var span = pickle.AsSpan(at, count);
            at += count;
            return span;
        }
        string Line()
        {
            int end = Array.IndexOf(pickle, (byte)'\n', at);
            if (end < 0) throw new InvalidDataException($"has a pickle cut short at byte {at} (data.pkl).");
            string text = Encoding.ASCII.GetString(pickle, at, end - at);
            at = end + 1;
            return text;
        }
        object? Pop()
        {
            if (stack.Count == 0 || stack[^1] is Mark) throw Malformed(at, "pops an empty stack");
            object? top = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return top;
        }
        List<object?> PopToMark()
        {
            if (marks.Count == 0) throw Malformed(at, "has no mark to return to");
            int start = marks.Pop();
            var items = stack.GetRange(start + 1, stack.Count - start - 1);
            stack.RemoveRange(start, stack.Count - start);
            return items;
        }
        void PushMark()
        {
            marks.Push(stack.Count);
            stack.Add(new Mark());
        }
        object? Top() => stack.Count > 0 && stack[^1] is not Mark ? stack[^1] : throw Malformed(at, "reads an empty stack");
        void SetItems(List<object?> items)
        {
            if (Top() is not PickledDict dict || items.Count % 2 != 0) throw Malformed(at, "sets items of something that is not a dict");
            for (int i = 0; i < items.Count; i += 2) dict.Add(new(items[i], items[i + 1]));
        }
        void Append(List<object?> items)
        {
            if (Top() is not List<object?> list) throw Malformed(at, "appends to something that is not a list");
            list.AddRange(items);
        }

        while (true)
        {
            if (at >= pickle.Length) throw new InvalidDataException("has a pickle that ends without STOP (data.pkl).");
            int position = at;
            byte op = pickle[at++];
            switch (op)
            {
                case 0x80: Take(1); break; // PROTO
                case 0x95: Take(8); break; // FRAME
                case (byte)'.': return stack.Count == 1 ? stack[0] : throw Malformed(position, "stops with other than one object on the stack");
                case (byte)'(': PushMark(); break;
                case (byte)')': stack.Add(Array.Empty<object?>()); break;
                case 0x85: stack.Add(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; }
                case (byte)'t': stack.Add(PopToMark().ToArray()); break;
                case (byte)'}': stack.Add(new PickledDict()); break;
                case (byte)'d': { var items = PopToMark(); stack.Add(new PickledDict()); SetItems(items); break; }
                case (byte)']': stack.Add(new List<object?>()); break;
                case (byte)'l': stack.Add(PopToMark()); break;
                case (byte)'s': { var value = Pop(); var key = Pop(); SetItems([key, value]); break; }
                case (byte)'u': SetItems(PopToMark()); break;
                case (byte)'a': Append([Pop()]); break;
                case (byte)'e': Append(PopToMark()); break;
                case (byte)'N': stack.Add(null); break;
                case 0x88: stack.Add(true); break;
                case 0x89: stack.Add(false); break;
                case (byte)'K': stack.Add((long)Take(1)[0]); break;
                case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case 0x8a: // LONG1: little-endian two's complement in up to 8 bytes here
                {
                    var digits = Take(Take(1)[0]);
                    if (digits.Length > 8) throw Malformed(position, $"holds a {digits.Length}-byte integer");
                    long value = 0;
                    for (int i = digits.Length - 1; i >= 0; i--) value = (value << 8) | digits[i];
                    if (digits.Length is > 0 and < 8 && (digits[^1] & 0x80) != 0) value -= 1L << (8 * digits.Length);
                    stack.Add(value);
                    break;
                }
                case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'X': stack.Add(Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break;
                case 0x8c: stack.Add(Encoding.UTF8.GetString(Take(Take(1)[0]))); break;
                case 0x8d: stack.Add(Encoding.UTF8.GetString(Take(Length8(Take(8), position)))); break;
                case (byte)'T': stack.Add(Encoding.Latin1.GetString(Take(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break;
                case (byte)'U': stack.Add(Encoding.Latin1.GetString(Take(Take(1)[0]))); break;
                case (byte)'B': stack.Add(Take(BinaryPrimitives.ReadInt32LittleEndian(Take(4))).ToArray()); break;
                case (byte)'C': stack.Add(Take(Take(1)[0]).ToArray()); break;
                case (byte)'q': memo[Take(1)[0]] = Top(); break;
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Top(); break;
                case 0x94: memo[memo.Count] = Top(); break;
                case (byte)'p': memo[MemoKey(Line(), position)] = Top(); break;
                case (byte)'h': stack.Add(Recall(memo, Take(1)[0], position)); break;
                case (byte)'j': stack.Add(Recall(memo, BinaryPrimitives.ReadUInt32LittleEndian(Take(4)), position)); break;
                case (byte)'g': stack.Add(Recall(memo, MemoKey(Line(), position), position)); break;
                case (byte)'0': Pop(); break;
                case (byte)'1': PopToMark(); break;
                case (byte)'2': stack.Add(Top()); break;
                case (byte)'c': { string module = Line(); stack.Add(Allowed(new Global(module, Line()))); break; }
                case 0x93:
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string m || name is not string n) throw Malformed(position, "names a global that is not two strings");
                    stack.Add(Allowed(new Global(m, n)));
                    break;
                }
                case (byte)'Q': stack.Add(Storage(Pop())); break;
                case (byte)'R': { var args = Pop(); stack.Add(Call(Pop(), args, position)); break; }
                case (byte)'b': // BUILD: an OrderedDict's attributes (a state dict's _metadata), which ddpm does not need
                {
                    Pop();
                    if (Top() is not PickledDict) throw Malformed(position, "sets the state of something that is not a dict");
                    break;
                }
                default:
                    throw Malformed(position, $"uses pickle opcode 0x{op:x2}, which a state dict saved by torch.save does not");
            }
        }
    }

    private static long MemoKey(string line, int position) =>
        long.TryParse(line, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long key)
            ? key : throw Malformed(position, $"names memo entry '{line}', which is not a number");

    private static int Length8(ReadOnlySpan<byte> bytes, int position)
    {
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return length <= int.MaxValue ? (int)length : throw Malformed(position, $"holds a string of {length} bytes");
    }

    private static object? Recall(Dictionary<long, object?> memo, long key, int position) =>
        memo.TryGetValue(key, out var value) ? value : throw Malformed(position, $"recalls memo entry {key}, which was never stored");

    private static InvalidDataException Malformed(int position, string what) =>
        new($"is not a PyTorch state dict saved by torch.save: its pickle (data.pkl) {what} (at byte {position}).");

    private static readonly HashSet<string> Functions = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    };

    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["DoubleStorage"] = ScalarType.Float64, ["FloatStorage"] = ScalarType.Float32, ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16, ["LongStorage"] = ScalarType.Int64, ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16, ["CharStorage"] = ScalarType.Int8, ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool, ["ComplexFloatStorage"] = ScalarType.ComplexFloat32, ["ComplexDoubleStorage"] = ScalarType.ComplexFloat64,
    };

    /// <summary>A global the vocabulary holds; any other is refused here, where it is named, before anything could use it.</summary>
    private static Global Allowed(Global global)
    {
        string name = global.ToString();
        if (Functions.Contains(name) || (global.Module == "torch" && StorageTypes.ContainsKey(global.Name))) return global;
        if (global.Module.StartsWith("torch.nn", StringComparison.Ordinal))
            throw new InvalidDataException($"holds a whole pickled model ({name}), not its state dict: save the weights with torch.save(model.state_dict(), path).");
        if (global.Module == "torch" || global.Module.StartsWith("torch.", StringComparison.Ordinal))
            throw new InvalidDataException($"uses {name}, which ddpm does not read; ddpm reads dense tensors in plain containers.");
        throw new InvalidDataException($"is refused: this file asks to run code ({name}); ddpm reads only tensors and plain containers.");
    }

    /// <summary>BINPERSID: ("storage", storage type, key, location, element count), as torch.save writes for each storage.</summary>
    private PickledStorage Storage(object? id)
    {
        if (id is not object?[] { Length: >= 5 } pid || pid[0] is not "storage" || pid[1] is not Global { Module: "torch" } type
            || !StorageTypes.TryGetValue(type.Name, out var dtype) || pid[2] is not string key || pid[4] is not long elements || elements < 0)
            throw new InvalidDataException("is not a PyTorch state dict saved by torch.save: its pickle names a storage that is not (\"storage\", type, key, location, count).");
        int elementSize = StoredTensor.ElementSize(dtype)!.Value;
        if (storages.TryGetValue(key, out var known))
            return known.Type == dtype && known.Elements == elements ? known
                : throw new InvalidDataException($"names storage data/{key} twice, as {known.Elements} × {known.Type} and as {elements} × {dtype}.");
        var entry = archive.GetEntry($"{prefix}data/{key}")
            ?? throw new InvalidDataException($"names storage data/{key}, which the archive does not hold.");
        if (elements > entry.Length / elementSize || entry.Length % elementSize != 0 || entry.Length / elementSize != elements)
            throw new InvalidDataException($"has storage data/{key} of {entry.Length} bytes, but its pickle says {elements} elements of {dtype} ({elementSize} bytes each).");
        return storages[key] = new PickledStorage(key, dtype, elementSize, elements);
    }

    /// <summary>REDUCE: the only callables are OrderedDict() and the tensor rebuild functions, which make descriptions here.</summary>
    private static object? Call(object? callable, object? arguments, int position)
    {
        if (callable is not Global function || arguments is not object?[] args)
            throw Malformed(position, "calls something that is not a known function");
        switch (function.ToString())
        {
            case "collections.OrderedDict" when args.Length == 0:
                return new PickledDict();
            case "collections.OrderedDict" when args.Length == 1 && Items(args[0]) is { } pairs: // OrderedDict(pairs), as PyBridge writes
            {
                var dict = new PickledDict();
                foreach (var pair in pairs)
                    dict.Add(Items(pair) is [var key, var value] ? new(key, value) : throw Malformed(position, "makes an OrderedDict of items that are not pairs"));
                return dict;
            }
            case "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor" when args.Length >= 4:
                if (args[0] is not PickledStorage storage || args[1] is not long offset || Longs(args[2]) is not { } shape || Longs(args[3]) is not { } stride
                    || shape.Length != stride.Length)
                    throw Malformed(position, $"calls {function} without (storage, offset, sizes, strides)");
                return new PickledTensor(storage, offset, shape, stride);
            case "torch._utils._rebuild_parameter" when args.Length >= 1 && args[0] is PickledTensor data:
                return data;
            default:
                throw Malformed(position, $"calls {function} with arguments it does not take");
        }
    }

    private static IReadOnlyList<object?>? Items(object? value) => value as object?[] ?? (IReadOnlyList<object?>?)(value as List<object?>);

    private static long[]? Longs(object? value) =>
        value is object?[] items && items.All(i => i is long) ? items.Select(i => (long)i!).ToArray() : null;

    /// <summary>
    /// Makes a contiguous tensor (owned by the caller) of the elements <paramref name="tensor"/> views: its offset and
    /// strides are checked against the storage's element count first, so a view past the storage names the tensor.
    /// </summary>
    public Tensor Materialize(string name, PickledTensor tensor, Dictionary<string, Tensor> loaded)
    {
        var (storage, offset, shape, stride) = tensor;
        string view = $"'{name}' ({storage.Type} {StoredTensor.Shape(shape)}, offset {offset}, strides {StoredTensor.Shape(stride)})";
        if (shape.Length > StoredTensor.MaxDimensions)
            throw new InvalidDataException($"has tensor '{name}' with {shape.Length} dimensions; a tensor has 0 to {StoredTensor.MaxDimensions}.");
        if (offset < 0 || shape.Any(s => s < 0) || stride.Any(s => s < 0))
            throw new InvalidDataException($"has tensor {view} with a negative offset, size or stride.");
        if (StoredTensor.Bytes(shape, storage.ElementSize) is not { } bytes)
            throw new InvalidDataException($"has tensor {view} whose shape needs more bytes than any file holds.");
        using var scope = NewDisposeScope();
        var result = empty(shape, storage.Type);
        if (bytes > 0)
        {
            // The last element the view reaches, offset + sum((size - 1) * stride), in 128 bits and stopped once past the storage.
            Int128 last = offset;
            for (int i = 0; i < shape.Length && last < storage.Elements; i++) last += (Int128)(shape[i] - 1) * stride[i];
            if (last >= storage.Elements)
                throw new InvalidDataException($"has tensor {view} that reaches past the {storage.Elements} elements of its storage data/{storage.Key}.");
            if (!loaded.TryGetValue(storage.Key, out var whole))
            {
                if (storage.Elements * storage.ElementSize > int.MaxValue)
                    throw new InvalidDataException($"has storage data/{storage.Key} of {storage.Elements * storage.ElementSize:N0} bytes; ddpm reads storages up to 2 GiB.");
                whole = empty(storage.Elements, storage.Type).DetachFromDisposeScope();
                loaded[storage.Key] = whole;
                using var stream = archive.GetEntry($"{prefix}data/{storage.Key}")!.Open();
                int read = stream.ReadAtLeast(whole.bytes, whole.bytes.Length, throwOnEndOfStream: false);
                if (read != whole.bytes.Length)
                    throw new InvalidDataException($"has storage data/{storage.Key} cut short: {read} of {whole.bytes.Length} bytes.");
            }
            result.copy_(whole.as_strided(shape, stride, offset));
        }
        return result.DetachFromDisposeScope();
    }
}
