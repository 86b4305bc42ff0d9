using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>The file formats other frameworks keep a model's weights in.</summary>
public enum WeightFormat
{
    /// <summary>safetensors (Hugging Face): a JSON header of names, dtypes and shapes, then the raw bytes; may carry string metadata.</summary>
    Safetensors = 0,
    /// <summary>PyTorch's <c>torch.save(model.state_dict())</c>: the zip file of a pickled dict of tensors (.pt, .pth, .bin).</summary>
    PyTorch = 1,
}

/// <summary>
/// A state dict read from (or to be written to) a safetensors or PyTorch file: tensors by name, in the file's order, and the
/// safetensors metadata. Owns its tensors (CPU).
/// </summary>
public sealed class WeightFile : IDisposable
{
    private WeightFile(string source, WeightFormat format, IReadOnlyList<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Source = source;
        Format = format;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file the weights were read from.</summary>
    public string Source { get; }

    /// <summary>The file's format.</summary>
    public WeightFormat Format { get; }

    /// <summary>The tensors by name: for safetensors in the header's order, for PyTorch files sorted by name (the pickled dict keeps no order here).</summary>
    public IReadOnlyList<(string Name, Tensor Value)> Tensors { get; }

    /// <summary>The safetensors "__metadata__" strings; empty for PyTorch files.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// The format a file name stands for: .safetensors is <see cref="WeightFormat.Safetensors"/>; .pt, .pth and .bin are
    /// <see cref="WeightFormat.PyTorch"/>; null for anything else.
    /// </summary>
    public static WeightFormat? FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".safetensors" => WeightFormat.Safetensors,
        ".pt" or ".pth" or ".bin" => WeightFormat.PyTorch,
        _ => null,
    };

    /// <summary>Reads a weights file in the format its extension names (see <see cref="FormatOf"/>).</summary>
    /// <exception cref="ArgumentException">The extension names no supported format.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed file of that format; the message names it.</exception>
    public static WeightFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var format = FormatOf(path)
            ?? throw new ArgumentException($"'{path}': the extension names no weights format (.safetensors, or .pt, .pth, .bin for PyTorch).", nameof(path));
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist.", path);
        try
        {
            if (format == WeightFormat.Safetensors)
            {
                var (tensors, metadata) = Safetensors.Read(File.ReadAllBytes(path));
                return new WeightFile(path, format, tensors, metadata);
            }
            return new WeightFile(path, format, PyTorchFile.Read(path), new Dictionary<string, string>());
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path} {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> in <paramref name="format"/>, with
    /// <paramref name="metadata"/> in a safetensors header (a PyTorch state dict has no place for it). The file is written
    /// beside <paramref name="path"/> under a temporary name, flushed, then moved over it, so no reader sees half a file.
    /// </summary>
    /// <param name="path">The file to write (replaced if it exists); its folder must exist.</param>
    /// <param name="format">Safetensors or PyTorch.</param>
    /// <param name="tensors">The state dict: name and tensor (any device; written from CPU copies), in the order to write.</param>
    /// <param name="metadata">Strings for the safetensors "__metadata__"; ignored for PyTorch.</param>
    public static void Write(string path, WeightFormat format, IReadOnlyList<(string Name, Tensor Value)> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var duplicate = tensors.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"The state dict names '{duplicate.Key}' twice.", nameof(tensors));
        AtomicFile.Write(path, stream =>
        {
            if (format == WeightFormat.Safetensors)
                Safetensors.Write(stream, tensors, metadata ?? new Dictionary<string, string>());
            else
                PyTorchFile.Write(stream, tensors);
        });
    }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        foreach (var (_, value) in Tensors) value.Dispose();
    }
}

/// <summary>Writes a file under a temporary name in its own folder, then moves it into place.</summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; replaces an existing file only if <paramref name="overwrite"/>.</summary>
    /// <exception cref="IOException"><paramref name="path"/> exists and <paramref name="overwrite"/> is false (nothing is written).</exception>
    public static void Write(string path, Action<Stream> write, bool overwrite = true)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        // Same folder, so the move is a rename on one file system; a unique name, so two writers never share it.
        string temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite);
        }
        finally
        {
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Writes text (UTF-8) as <see cref="Write(string, Action{Stream}, bool)"/> does.</summary>
    public static void WriteText(string path, string text, bool overwrite = true) =>
        Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text)), overwrite);
}
