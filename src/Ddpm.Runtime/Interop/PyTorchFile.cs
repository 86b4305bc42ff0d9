using System.Collections.Specialized;
using System.IO.Compression;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>PyTorch state dicts (<c>torch.save(model.state_dict())</c>, the zip format): written through TorchSharp.PyBridge, read by <see cref="StateDictUnpickler"/>.</summary>
internal static class PyTorchFile
{
    /// <summary>Pickles <paramref name="tensors"/> as a dict of name to tensor, which <c>torch.load</c> reads.</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, Tensor Value)> tensors)
    {
        using var scope = NewDisposeScope();
        var table = new OrderedDictionary(tensors.Count); // torch.load gives back the dict in this order
        foreach (var (name, value) in tensors)
            table[name] = value.detach().cpu().contiguous();
        PyTorchPickler.PickleStateDict(stream, table, leaveOpen: true);
    }

    /// <summary>
    /// Reads a state dict (a dict or OrderedDict of name to tensor); the tensors are sorted by name, contiguous, and owned by
    /// the caller. Tensors that view part of a larger storage (an offset, strides, several sharing one storage) are copied out.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a PyTorch zip file holding a dict of tensors; the message says what it holds.</exception>
    public static List<(string Name, Tensor Value)> Read(string path)
    {
        using var stream = File.OpenRead(path);
        ZipArchive archive;
        try { archive = new ZipArchive(stream, ZipArchiveMode.Read); }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"is not a PyTorch state dict saved by torch.save (zip format): {e.Message}", e);
        }
        using var _ = archive;
        var (root, reader) = StateDictUnpickler.Load(archive);
        if (root is not StateDictUnpickler.PickledDict dict)
            throw new InvalidDataException($"holds {Describe(root)} at the top level, not a dict of tensors: ddpm reads a state dict saved by torch.save(model.state_dict(), path).");
        foreach (var (key, value) in dict)
            if (key is not string || value is not StateDictUnpickler.PickledTensor)
                throw new InvalidDataException($"holds '{key ?? "None"}', which is not a tensor but {Describe(value)}: save the model's state_dict() alone (torch.save(model.state_dict(), path)).");

        var loaded = new Dictionary<string, Tensor>(StringComparer.Ordinal); // each storage once, however many tensors view it
        var tensors = new List<(string Name, Tensor Value)>(dict.Count);
        try
        {
            foreach (var (key, value) in dict)
            {
                string name = (string)key!;
                var tensor = reader.Materialize(name, (StateDictUnpickler.PickledTensor)value!, loaded);
                int index = tensors.FindIndex(t => t.Name == name);
                if (index >= 0)
                {
                    tensors[index].Value.Dispose(); // a key set twice keeps its last value, as in Python
                    tensors[index] = (name, tensor);
                }
                else tensors.Add((name, tensor));
            }
        }
        catch
        {
            foreach (var (_, value) in tensors) value.Dispose();
            throw;
        }
        finally
        {
            foreach (var storage in loaded.Values) storage.Dispose();
        }
        tensors.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return tensors;
    }

    /// <summary>What a pickled object is, in Python's words: "a list of 3 items", "a tensor", "a str".</summary>
    private static string Describe(object? value) => value switch
    {
        null => "None",
        StateDictUnpickler.PickledTensor => "a tensor",
        StateDictUnpickler.PickledDict d => $"a dict of {d.Count} items",
        List<object?> l => $"a list of {l.Count} items",
        object?[] t => $"a tuple of {t.Length} items",
        string => "a str",
        long => "an int",
        double => "a float",
        bool => "a bool",
        byte[] => "bytes",
        _ => "a storage",
    };
}
