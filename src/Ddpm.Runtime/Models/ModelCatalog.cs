using Ddpm.Diffusion;
using Ddpm.Schedules;
using Ddpm.Specs;
using static TorchSharp.torch;

namespace Ddpm.Models;

/// <summary>
/// A compiled model with the schedule and training settings it was declared with. The source
/// generator registers one per YAML spec (from a module initializer), so the CLI can go from a
/// spec file or a model name to a typed model without reflection.
/// </summary>
/// <param name="Name">The model's class name, e.g. FashionMnistUNet.</param>
/// <param name="SpecFile">The spec's file name, e.g. fashion-mnist.yaml.</param>
/// <param name="CreateModel">Creates the generated module with fresh weights.</param>
/// <param name="Diffusion">The generated schedule's diffusion process: its tables, objective and sampling options.</param>
/// <param name="Channels">Image channels.</param>
/// <param name="ImageSize">Image height and width.</param>
/// <param name="ParameterCount">Generator-computed parameter count.</param>
/// <param name="ArchitectureHash">Hash of the spec's model and schedule sections as compiled; a spec file whose hash differs was edited after the build.</param>
/// <param name="Training">The spec's training settings as compiled.</param>
/// <param name="Stages">One line per U-Net stage (resolution, channels, blocks, attention), as the generator describes it.</param>
/// <param name="Conditioning">A class-conditional model's classes, label dropout and default guidance; null for an unconditional model.</param>
public sealed record ModelEntry(
    string Name,
    string SpecFile,
    Func<nn.Module<Tensor, Tensor, Tensor>> CreateModel,
    GaussianDiffusion Diffusion,
    int Channels,
    int ImageSize,
    long ParameterCount,
    string ArchitectureHash,
    TrainingSpec Training,
    IReadOnlyList<string>? Stages = null,
    Ddpm.Conditioning.ClassConditioning? Conditioning = null)
{
    /// <summary>The schedule's tables.</summary>
    public ScheduleTables Schedule => Diffusion.Tables;

    /// <summary>The shape of a batch of the model's images, [batch, Channels, ImageSize, ImageSize].</summary>
    public long[] BatchShape(long batch) => new long[] { batch, Channels, ImageSize, ImageSize };
}

/// <summary>The models compiled into the running program.</summary>
public static class ModelCatalog
{
    private static readonly object Gate = new();
    private static readonly List<ModelEntry> Entries = new();

    /// <summary>Adds <paramref name="entry"/>, replacing an entry of the same name; called by the generated module initializers.</summary>
    public static void Register(ModelEntry entry)
    {
        lock (Gate)
        {
            Entries.RemoveAll(e => e.Name == entry.Name);
            Entries.Add(entry);
        }
    }

    /// <summary>A snapshot of every registered model, ordered by name (ordinal).</summary>
    public static IReadOnlyList<ModelEntry> All
    {
        get { lock (Gate) return Entries.OrderBy(e => e.Name, StringComparer.Ordinal).ToList(); }
    }

    /// <summary>The compiled models for an error message: "FashionMnistUNet (fashion-mnist.yaml), ..." or "none".</summary>
    public static string Describe()
    {
        var all = All;
        return all.Count == 0 ? "none" : string.Join(", ", all.Select(e => $"{e.Name} ({e.SpecFile})"));
    }

    /// <summary>Finds a model by class name or by spec file name (with or without .yaml), ignoring case.</summary>
    public static ModelEntry? Find(string nameOrSpec)
    {
        string key = Path.GetFileName(nameOrSpec);
        lock (Gate)
            return Entries.FirstOrDefault(e => string.Equals(e.Name, key, StringComparison.OrdinalIgnoreCase))
                ?? Entries.FirstOrDefault(e => string.Equals(e.SpecFile, key, StringComparison.OrdinalIgnoreCase))
                ?? Entries.FirstOrDefault(e => string.Equals(Path.GetFileNameWithoutExtension(e.SpecFile), key, StringComparison.OrdinalIgnoreCase));
    }
}
