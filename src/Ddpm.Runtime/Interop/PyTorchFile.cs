using System.Collections;
using System.Collections.Specialized;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>PyTorch state dicts (<c>torch.save(model.state_dict())</c>, the zip format) through TorchSharp.PyBridge.</summary>
internal static partial class PyTorchFile
{
    /// <summary>The unpickler's words for a class it was asked to construct: "construction of ClassDict (for posix.system)".</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"construction of ClassDict \(for ([^)\s]+)\)")]
    private static partial System.Text.RegularExpressions.Regex CodeRequest();

    /// <summary>Pickles <paramref name="tensors"/> as a dict of name to tensor, which <c>torch.load</c> reads.</summary>
    public static void Write(Stream stream, IReadOnlyList<(string Name, Tensor Value)> tensors)
    {
        using var scope = NewDisposeScope();
        var table = new OrderedDictionary(tensors.Count); // torch.load gives back the dict in this order
        foreach (var (name, value) in tensors)
            table[name] = value.detach().cpu().contiguous();
        PyTorchPickler.PickleStateDict(stream, table, leaveOpen: true);
    }

    /// <summary>Unpickles a state dict; the tensors are sorted by name and owned by the caller.</summary>
    /// <exception cref="InvalidDataException">The file is not a PyTorch zip file holding a dict of tensors.</exception>
    public static List<(string Name, Tensor Value)> Read(string path)
    {
        Hashtable table;
        try
        {
            using var stream = File.OpenRead(path);
            using var scope = NewDisposeScope();
            table = PyTorchUnpickler.UnpickleStateDict(stream);
            foreach (var value in table.Values)
                if (value is Tensor tensor) tensor.DetachFromDisposeScope();
        }
        // The unpickler's errors on a foreign file are of many kinds (zip, pickle opcodes, casts): all mean the same here.
        catch (Exception e) when (e is not (OutOfMemoryException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException))
        {
            // A pickle that names a class to construct (posix.system, builtins.eval, ...) asks to run code: refused, in those words.
            if (CodeRequest().Match(e.Message) is { Success: true } code)
                throw new InvalidDataException($"is refused: this file asks to run code ({code.Groups[1].Value}); ddpm reads only tensors and plain containers.", e);
            throw new InvalidDataException($"is not a PyTorch state dict saved by torch.save (zip format): {e.Message}", e);
        }
        var tensors = new List<(string Name, Tensor Value)>(table.Count);
        string? notTensor = null;
        foreach (DictionaryEntry item in table)
        {
            if (item.Key is string name && item.Value is Tensor value) tensors.Add((name, value));
            else notTensor ??= item.Key?.ToString() ?? "null";
        }
        if (notTensor is not null)
        {
            foreach (var (_, value) in tensors) value.Dispose();
            throw new InvalidDataException($"holds '{notTensor}', which is not a tensor: save the model's state_dict() alone (torch.save(model.state_dict(), path)).");
        }
        tensors.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return tensors;
    }
}
