using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Evaluation;

/// <summary>What a cached feature net is: the data it was trained on, its shape, how it was trained and how well it classifies.</summary>
/// <param name="Dataset">The data set's name as it was asked for (<see cref="LabelledDataset.Name"/>).</param>
/// <param name="Fingerprint">SHA-256 of the data set's splits (<see cref="LabelledDataset.Fingerprint"/>).</param>
/// <param name="ArchitectureVersion">The <see cref="FeatureNet.ArchitectureVersion"/> the net was built with.</param>
/// <param name="Channels">Image channels the net reads.</param>
/// <param name="ImageSize">Height and width of the images it was trained on.</param>
/// <param name="ClassNames">The classes it predicts, in label order.</param>
/// <param name="Options">How it was trained.</param>
/// <param name="TestAccuracy">Share of the test split classified correctly, in [0, 1].</param>
/// <param name="TrainSeconds">Wall-clock time the training took.</param>
/// <param name="TorchThreads">torch's intra-op thread count during training (bit-reproducibility needs the same).</param>
public sealed record FeatureNetInfo(
    string Dataset,
    string Fingerprint,
    int ArchitectureVersion,
    int Channels,
    int ImageSize,
    IReadOnlyList<string> ClassNames,
    FeatureNetOptions Options,
    double TestAccuracy,
    double TrainSeconds,
    int TorchThreads)
{
    /// <summary>
    /// SHA-256 (lowercase hex) of the weights as <c>Module.save</c> writes them (<see cref="FeatureNetCache.WeightsSha256"/>):
    /// the name of the features themselves. Nets trained from the same data, options and seed can still differ (another
    /// libtorch kernel, another CPU), and scores compare only when they come from the same net. Null when the
    /// description was not read from or written with a net.
    /// </summary>
    public string? WeightsSha256 { get; init; }
}

/// <summary>A trained feature net with its description; owns the net.</summary>
/// <param name="Net">The trained net (disposed with this record).</param>
/// <param name="Info">What the net is and how it was trained.</param>
/// <param name="Path">The cache file it was loaded from or written to; for a shipped net, its file name and where it comes
/// from: "fashion-mnist.fnet, shipped with Ddpm.Runtime".</param>
public sealed record CachedFeatureNet(FeatureNet Net, FeatureNetInfo Info, string Path) : IDisposable
{
    /// <summary>True for a ready-made net shipped with Ddpm.Runtime (nothing was trained or read from the cache).</summary>
    public bool Shipped { get; init; }

    /// <summary>Disposes the net.</summary>
    public void Dispose() => Net.Dispose();
}

/// <summary>
/// Finds the <see cref="FeatureNet"/> of a data set: the one shipped with Ddpm.Runtime for exactly this data
/// (<see cref="FeatureNetCatalog.Shipped"/>; Fashion-MNIST has one), else the one in the data set's cache folder
/// (<c>feature-net-v1.bin</c> beside the IDX files), else one trained on first use and cached there.
/// </summary>
/// <remarks>
/// File layout (little-endian), as the checkpoints': "DDPMFNET", int32 format version, int64 payload length,
/// the payload, then the SHA-256 of the payload. The payload holds the <see cref="FeatureNetInfo"/> fields and
/// then the weights in TorchSharp's own format (<c>Module.save</c>). Every load checks the checksum, the format
/// and architecture versions, the data set's fingerprint, the image shape, the classes and the training options;
/// a file that fails any check is retrained and overwritten, with a log line saying why, never trusted. Written
/// to a unique temporary name, flushed, then renamed into place, so a crash never leaves half a file.
/// </remarks>
public static class FeatureNetCache
{
    /// <summary>The cache file format this build reads and writes; a file of another version is retrained.</summary>
    public const int FormatVersion = 1;
    private const int HashBytes = 32;
    private static ReadOnlySpan<byte> Magic => "DDPMFNET"u8;

    /// <summary>The cache file's name for the current architecture.</summary>
    public static string FileName => $"feature-net-v{FeatureNet.ArchitectureVersion}.bin";

    /// <summary>The cache file for <paramref name="data"/>.</summary>
    public static string PathFor(LabelledDataset data) => System.IO.Path.Combine(data.CacheFolder, FileName);

    /// <summary>
    /// The net shipped for <paramref name="data"/> when there is one for exactly this data and these options (verified
    /// against its SHA-256); otherwise the cached net when it is intact and was trained on this data with these options;
    /// otherwise trains one (logging progress) and caches it. A cache folder that cannot be written is logged and the
    /// freshly trained net used anyway.
    /// </summary>
    /// <exception cref="InvalidDataException">The shipped net for this data does not match its manifest (never replaced by a trained one).</exception>
    public static CachedFeatureNet LoadOrTrain(LabelledDataset data, FeatureNetOptions? options = null, Action<string>? log = null)
        => LoadOrTrain(data, options, log, FeatureNetCatalog.Shipped);

    /// <summary><see cref="LoadOrTrain(LabelledDataset, FeatureNetOptions?, Action{string}?)"/> with the ready-made nets of <paramref name="catalog"/>.</summary>
    internal static CachedFeatureNet LoadOrTrain(LabelledDataset data, FeatureNetOptions? options, Action<string>? log, FeatureNetCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(catalog);
        options = (options ?? FeatureNetOptions.Default).Validated();
        string path = PathFor(data);
        string fingerprint = data.Fingerprint();
        if (FromCatalog(data, fingerprint, options, log, catalog) is { } ready) return ready;
        if (File.Exists(path))
        {
            try
            {
                var (net, info) = Read(path);
                string? mismatch = Mismatch(info, data, fingerprint, options);
                if (mismatch is null)
                {
                    log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                        $"feature net: using {path} (test accuracy {info.TestAccuracy * 100:F2}%, weights sha256 {info.WeightsSha256![..12]})"));
                    return new CachedFeatureNet(net, info, path);
                }
                net.Dispose();
                log?.Invoke($"feature net: {path} {mismatch}; retraining.");
            }
            catch (InvalidDataException e)
            {
                log?.Invoke($"feature net: {e.Message}; retraining.");
            }
        }

        var (trained, fresh) = Train(data, options, log);
        try
        {
            Write(path, trained, fresh);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"feature net: trained in {fresh.TrainSeconds:F0} s, test accuracy {fresh.TestAccuracy * 100:F2}%, weights sha256 {fresh.WeightsSha256![..12]}, cached in {path}"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log?.Invoke($"feature net: trained, but could not cache it in {path}: {e.Message}");
        }
        return new CachedFeatureNet(trained, fresh, path);
    }

    /// <summary>Trains a new net on <paramref name="data"/> (<see cref="FeatureNetTrainer.Train"/>) and describes it; the caller owns the net.</summary>
    internal static (FeatureNet Net, FeatureNetInfo Info) Train(LabelledDataset data, FeatureNetOptions options, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(data);
        options = options.Validated();
        string fingerprint = data.Fingerprint();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (trained, accuracy) = FeatureNetTrainer.Train(data, options, log);
        var info = new FeatureNetInfo(data.Name, fingerprint, FeatureNet.ArchitectureVersion, data.Channels, data.ImageSize,
                                      data.ClassNames.ToArray(), options, accuracy, watch.Elapsed.TotalSeconds, get_num_threads())
        {
            WeightsSha256 = WeightsSha256(trained),
        };
        return (trained, info);
    }

    /// <summary>The ready-made net of <paramref name="catalog"/> for this data and these options, verified; null when it has none.</summary>
    private static CachedFeatureNet? FromCatalog(LabelledDataset data, string fingerprint, FeatureNetOptions options, Action<string>? log, FeatureNetCatalog catalog)
    {
        var manifest = catalog.For(fingerprint);
        if (manifest is null)
        {
            // Say so when a net of that name exists but for other data (e.g. Fashion-MNIST from the official files, another split).
            if (catalog.Nets.FirstOrDefault(n => string.Equals(n.Dataset, data.Name, StringComparison.OrdinalIgnoreCase)) is { } named)
                log?.Invoke($"feature net: the net {named.File} ({catalog.Origin}) is for other {named.Dataset} data " +
                            $"(data sha256 {named.DataSha256[..12]}, this data {fingerprint[..12]}); it is not used.");
            return null;
        }
        if (manifest.Options != options)
        {
            log?.Invoke($"feature net: the net {manifest.File} ({catalog.Origin}) was trained with other options ({manifest.Options}, now {options}); it is not used.");
            return null;
        }
        var (net, info) = catalog.Load(manifest);
        if (Mismatch(info, data, fingerprint, options) is { } mismatch)
        {
            net.Dispose();
            throw new InvalidDataException($"The feature net {manifest.File} ({catalog.Origin}) {mismatch}.");
        }
        log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"feature net: using {manifest.File} ({catalog.Origin}; test accuracy {info.TestAccuracy * 100:F2}%, weights sha256 {info.WeightsSha256![..12]}); nothing to train"));
        return new CachedFeatureNet(net, info, $"{manifest.File}, {catalog.Origin}") { Shipped = true };
    }

    /// <summary>SHA-256 of <paramref name="net"/>'s weights as <c>Module.save</c> writes them (the bytes a cache file holds), lowercase hex.</summary>
    public static string WeightsSha256(FeatureNet net)
    {
        ArgumentNullException.ThrowIfNull(net);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true)) net.save(writer);
        return HashOfWeights(stream.GetBuffer().AsSpan(0, (int)stream.Length));
    }

    /// <summary>The one rule for naming a net: SHA-256 of its saved weight bytes, lowercase hex.</summary>
    private static string HashOfWeights(ReadOnlySpan<byte> savedWeights) => Convert.ToHexStringLower(SHA256.HashData(savedWeights));

    /// <summary>Writes <paramref name="net"/> and its description atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, FeatureNet net, FeatureNetInfo info)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(info);
        byte[] payload;
        using (var stream = new MemoryStream())
        {
            using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(info.Dataset);
                writer.Write(info.Fingerprint);
                writer.Write(info.ArchitectureVersion);
                writer.Write(info.Channels);
                writer.Write(info.ImageSize);
                writer.Write(info.ClassNames.Count);
                foreach (string name in info.ClassNames) writer.Write(name);
                writer.Write(info.Options.Epochs);
                writer.Write(info.Options.BatchSize);
                writer.Write(info.Options.LearningRate);
                writer.Write(info.Options.Seed);
                writer.Write(info.TestAccuracy);
                writer.Write(info.TrainSeconds);
                writer.Write(info.TorchThreads);
                net.save(writer);
            }
            payload = stream.ToArray();
        }
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        string temporary = $"{path}.partial-{Guid.NewGuid():N}";
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            using (var writer = new BinaryWriter(file, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write((long)payload.Length);
                writer.Write(payload);
                writer.Write(SHA256.HashData(payload));
                writer.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Reads and verifies a feature-net file; any problem is an <see cref="InvalidDataException"/> naming the file.</summary>
    public static (FeatureNet Net, FeatureNetInfo Info) Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path} cannot be read: {e.Message}", e);
        }
        return Read(bytes, path);
    }

    /// <summary>Reads and verifies the bytes of a feature-net file; any problem is an <see cref="InvalidDataException"/> starting with <paramref name="path"/>.</summary>
    internal static (FeatureNet Net, FeatureNetInfo Info) Read(byte[] bytes, string path)
    {
        int header = Magic.Length + sizeof(int) + sizeof(long);
        if (bytes.Length < header || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a feature-net file (it does not start with \"DDPMFNET\")");
        int version = BitConverter.ToInt32(bytes, Magic.Length);
        if (version != FormatVersion)
            throw new InvalidDataException($"{path} has format version {version}; this build reads version {FormatVersion}");
        long length = BitConverter.ToInt64(bytes, Magic.Length + sizeof(int));
        if (length < 0 || bytes.LongLength != header + length + HashBytes)
            throw new InvalidDataException($"{path} is truncated or has trailing bytes ({bytes.LongLength} bytes, the header promises {header + length + HashBytes})");
        var payload = bytes.AsSpan(header, (int)length);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(header + (int)length, HashBytes)))
            throw new InvalidDataException($"{path} is corrupt: the SHA-256 of its contents does not match the one it was written with");

        FeatureNet? net = null;
        try
        {
            using var stream = new MemoryStream(bytes, header, (int)length, writable: false);
            using var reader = new BinaryReader(stream, Encoding.UTF8);
            string dataset = reader.ReadString();
            string fingerprint = reader.ReadString();
            int architecture = reader.ReadInt32();
            int channels = reader.ReadInt32();
            int imageSize = reader.ReadInt32();
            int classCount = reader.ReadInt32();
            if (classCount < 2 || classCount > 100_000) throw new InvalidDataException($"{classCount} classes");
            var classes = new string[classCount];
            for (int i = 0; i < classCount; i++) classes[i] = reader.ReadString();
            var options = new FeatureNetOptions(reader.ReadInt32(), reader.ReadInt32(), reader.ReadDouble(), reader.ReadInt64());
            double accuracy = reader.ReadDouble();
            double seconds = reader.ReadDouble();
            int threads = reader.ReadInt32();
            // The rest of the payload is the weights, exactly as WeightsSha256 hashes them.
            int weights = header + (int)stream.Position;
            var info = new FeatureNetInfo(dataset, fingerprint, architecture, channels, imageSize, classes, options, accuracy, seconds, threads)
            {
                WeightsSha256 = HashOfWeights(bytes.AsSpan(weights, header + (int)length - weights)),
            };
            if (architecture != FeatureNet.ArchitectureVersion)
                throw new InvalidDataException($"architecture version {architecture}, this build's is {FeatureNet.ArchitectureVersion}");
            net = new FeatureNet(channels, classCount);
            net.load(reader, strict: true);
            if (stream.Position != stream.Length)
                throw new InvalidDataException($"{stream.Length - stream.Position} unexpected bytes after the weights");
            net.eval();
            return (net, info);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            net?.Dispose();
            throw new InvalidDataException($"{path} is corrupt: {e.Message}", e);
        }
    }

    /// <summary>Why a cached net cannot stand for <paramref name="data"/> trained with <paramref name="options"/>, or null when it can.</summary>
    private static string? Mismatch(FeatureNetInfo info, LabelledDataset data, string fingerprint, FeatureNetOptions options)
    {
        if (info.Fingerprint != fingerprint)
            return "was trained on other data (its data fingerprint differs)";
        if (info.Channels != data.Channels || info.ImageSize != data.ImageSize)
            return $"is for {info.Channels}x{info.ImageSize}x{info.ImageSize} images, the data set has {data.Channels}x{data.ImageSize}x{data.ImageSize}";
        if (!info.ClassNames.SequenceEqual(data.ClassNames))
            return "was trained with other class names";
        if (info.Options != options)
            return $"was trained with other options ({info.Options}, now {options})";
        if (!(info.TestAccuracy is >= 0 and <= 1))
            return $"records an impossible test accuracy {info.TestAccuracy}";
        return null;
    }
}
