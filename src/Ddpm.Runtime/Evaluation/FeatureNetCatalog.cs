using System.Reflection;

namespace Ddpm.Evaluation;

/// <summary>
/// Feature nets that come ready-made, each a <c>.fnet</c> file (<see cref="FeatureNetCache"/>'s format) with its
/// <see cref="FeatureNetManifest"/>. <see cref="Shipped"/> holds the ones embedded in Ddpm.Runtime (made by
/// <c>ddpm eval --train-feature-net ... --out src/Ddpm.Runtime/Evaluation/FeatureNets/NAME.fnet</c>, which writes both
/// files); evaluation uses the one whose data fingerprint is the data set's instead of training a net.
/// </summary>
/// <remarks>
/// A net is found by the SHA-256 of the data (<see cref="LabelledDataset.Fingerprint"/>), never by a name, so a shipped net
/// stands only for exactly the data it was trained on. Every load checks the file's length and SHA-256 against the manifest,
/// then that the net it holds is the one the manifest names (weights SHA-256, data, architecture): a mismatch is one
/// <see cref="InvalidDataException"/>, never a silent fallback to another net.
/// </remarks>
internal sealed class FeatureNetCatalog
{
    /// <summary>The logical-name prefix of the embedded nets and manifests (see Ddpm.Runtime.csproj).</summary>
    public const string ResourcePrefix = "Ddpm.Evaluation.FeatureNets.";

    private static readonly Lazy<FeatureNetCatalog> shipped = new(LoadEmbedded);
    private readonly Func<string, byte[]?> readFile;

    /// <summary>A catalogue of <paramref name="nets"/> whose files <paramref name="readFile"/> reads by name (null: missing).</summary>
    /// <param name="nets">The manifests.</param>
    /// <param name="readFile">Reads a net file by its <see cref="FeatureNetManifest.File"/> name.</param>
    /// <param name="origin">Where the nets come from, for messages ("shipped with Ddpm.Runtime", "from &lt;folder&gt;").</param>
    public FeatureNetCatalog(IEnumerable<FeatureNetManifest> nets, Func<string, byte[]?> readFile, string origin)
    {
        Nets = nets.ToArray();
        this.readFile = readFile;
        Origin = origin;
    }

    /// <summary>The nets embedded in Ddpm.Runtime.</summary>
    public static FeatureNetCatalog Shipped => shipped.Value;

    /// <summary>No nets: every data set trains its own (or uses its cache).</summary>
    public static FeatureNetCatalog Empty { get; } = new([], _ => null, "no shipped nets");

    /// <summary>The <c>*.json</c> manifests of <paramref name="folder"/> and the net files they name there.</summary>
    public static FeatureNetCatalog FromFolder(string folder) => new(
        Directory.GetFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(p => FeatureNetManifest.Parse(File.ReadAllText(p), p)),
        name => File.Exists(Path.Combine(folder, name)) ? File.ReadAllBytes(Path.Combine(folder, name)) : null,
        $"from {folder}");

    /// <summary>The manifests, in name order.</summary>
    public IReadOnlyList<FeatureNetManifest> Nets { get; }

    /// <summary>Where the nets come from, for messages.</summary>
    public string Origin { get; }

    /// <summary>The net trained on exactly the data of fingerprint <paramref name="dataSha256"/> for this build's architecture, or null.</summary>
    public FeatureNetManifest? For(string dataSha256) =>
        Nets.FirstOrDefault(n => n.DataSha256 == dataSha256 && n.ArchitectureVersion == FeatureNet.ArchitectureVersion);

    /// <summary>The net file's bytes after checking its length and SHA-256 against <paramref name="manifest"/>.</summary>
    /// <exception cref="InvalidDataException">The file is missing or is not the one the manifest describes.</exception>
    public byte[] ReadVerified(FeatureNetManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        byte[] bytes = readFile(manifest.File)
            ?? throw new InvalidDataException($"The feature net {manifest.File} ({Origin}) is missing, though its manifest lists it.");
        string actual = FeatureNetManifest.Sha256Of(bytes);
        if (bytes.LongLength != manifest.Bytes || actual != manifest.Sha256)
            throw new InvalidDataException(
                $"The feature net {manifest.File} ({Origin}) does not match its manifest: {bytes.LongLength:N0} bytes with SHA-256 {actual[..12]}, " +
                $"the manifest says {manifest.Bytes:N0} bytes with SHA-256 {manifest.Sha256[..12]}; the file was changed or damaged, so it is not used.");
        return bytes;
    }

    /// <summary>Loads the net <paramref name="manifest"/> describes, verified (<see cref="ReadVerified"/>, then its weights, data and architecture).</summary>
    /// <exception cref="InvalidDataException">Any check fails.</exception>
    public (FeatureNet Net, FeatureNetInfo Info) Load(FeatureNetManifest manifest)
    {
        byte[] bytes = ReadVerified(manifest);
        var (net, info) = FeatureNetCache.Read(bytes, $"{manifest.File} ({Origin})");
        string? problem =
            info.WeightsSha256 != manifest.WeightsSha256 ? $"its weights have SHA-256 {info.WeightsSha256?[..12]}, the manifest names {manifest.WeightsSha256[..12]}"
            : info.Fingerprint != manifest.DataSha256 ? "it was trained on other data than its manifest says"
            : info.ArchitectureVersion != manifest.ArchitectureVersion ? $"it has architecture version {info.ArchitectureVersion}, the manifest says {manifest.ArchitectureVersion}"
            : info.Options != manifest.Options ? "it was trained with other options than its manifest says"
            : null;
        if (problem is null) return (net, info);
        net.Dispose();
        throw new InvalidDataException($"The feature net {manifest.File} ({Origin}) does not match its manifest: {problem}.");
    }

    private static FeatureNetCatalog LoadEmbedded()
    {
        var assembly = typeof(FeatureNetCatalog).Assembly;
        var manifests = assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => FeatureNetManifest.Parse(ReadText(assembly, n), $"the embedded resource {n}"))
            .ToArray();
        return new FeatureNetCatalog(manifests, name => ReadBytes(assembly, ResourcePrefix + name), "shipped with Ddpm.Runtime");
    }

    private static string ReadText(Assembly assembly, string name)
    {
        using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
        return reader.ReadToEnd();
    }

    /// <summary>An embedded resource's bytes, or null when there is none of that name.</summary>
    internal static byte[]? ReadBytes(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name);
        if (stream is null) return null;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
