using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ddpm.Native;

/// <summary>
/// The results of the kernel checks on this machine (<see cref="KernelCheck"/>), kept in one JSON file per machine key under
/// <c>$DDPM_CACHE/kernels</c> (default <c>~/.cache/ddpm/kernels</c>): the CPU (brand and features), the libtorch build, the
/// thread count and the environment variables that change which kernels run. Any change of those gives another key, so an
/// old result is never applied to a new situation; a file that cannot be read is treated as empty and written anew.
/// </summary>
internal sealed class KernelCache
{
    /// <summary>Overrides the cache root (the folder that holds <c>kernels/</c>).</summary>
    public const string EnvironmentVariable = "DDPM_CACHE";

    /// <summary>The file layout's version: a file of another version is ignored.</summary>
    public const int FormatVersion = 1;

    /// <summary>Environment variables that change which kernels run or how fast: part of the key.</summary>
    private static readonly string[] KeyVariables =
        ["DDPM_ONEDNN", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "DDPM_MKL_DISPATCH", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "OMP_NUM_THREADS"];

    // Errors are infinite when a result was not finite.
    private static readonly JsonSerializerOptions JsonOptions =
        new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly object gate = new();
    private readonly Contents contents;

    private KernelCache(string path, Contents contents)
    {
        Path = path;
        this.contents = contents;
    }

    /// <summary>The cache file.</summary>
    public string Path { get; }

    /// <summary>What the key is made of, one "name=value" line each (written into the file for people).</summary>
    public static IReadOnlyList<string> MachineKey(int threads)
    {
        var key = new List<string>
        {
            $"cpu={CpuInfo.Name()}",
            $"features={string.Join(' ', CpuInfo.Features())}",
            $"torchsharp={typeof(TorchSharp.torch).Assembly.GetName().Version}",
            $"libtorch_cpu={LibraryIdentity("libtorch_cpu.so")}",
            $"threads={threads}",
        };
        foreach (string variable in KeyVariables)
            key.Add($"{variable}={Environment.GetEnvironmentVariable(variable) ?? ""}");
        return key;
    }

    /// <summary>Opens the cache for this machine key in <paramref name="root"/> (default: <see cref="DefaultRoot"/>).</summary>
    public static KernelCache Open(int threads, string? root = null)
    {
        var key = MachineKey(threads);
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', key))))[..16];
        string path = System.IO.Path.Combine(root ?? DefaultRoot(), "kernels", $"{hash}.json");
        Contents? read = null;
        try
        {
            if (File.Exists(path))
                read = JsonSerializer.Deserialize<Contents>(File.ReadAllText(path), JsonOptions);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { }
        if (read is null || read.Version != FormatVersion || !read.Key.SequenceEqual(key))
            read = new Contents { Version = FormatVersion, Key = [.. key] };
        return new KernelCache(path, read);
    }

    /// <summary><c>$DDPM_CACHE</c>, else <c>~/.cache/ddpm</c>.</summary>
    public static string DefaultRoot() =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } root
            ? System.IO.Path.GetFullPath(root)
            : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ddpm");

    /// <summary>Whether oneMKL's vendor code path passed its GEMM check here (null: not checked yet).</summary>
    public bool? MklVendorDispatch
    {
        get { lock (gate) return contents.MklVendorDispatch; }
        set { lock (gate) contents.MklVendorDispatch = value; }
    }

    /// <summary>The recorded check of one convolution shape, or null.</summary>
    public ConvolutionCheckResult? Convolution(string shapeKey)
    {
        lock (gate) return contents.Convolutions.TryGetValue(shapeKey, out var result) ? result : null;
    }

    /// <summary>Records the check of one convolution shape.</summary>
    public void SetConvolution(string shapeKey, ConvolutionCheckResult result)
    {
        lock (gate) contents.Convolutions[shapeKey] = result;
    }

    /// <summary>The recorded timing of one model (by the key <see cref="ConvolutionBackends"/> makes of it), or null.</summary>
    public ModelTiming? Timing(string modelKey)
    {
        lock (gate) return contents.Timings.TryGetValue(modelKey, out var timing) ? timing : null;
    }

    /// <summary>Records the timing of one model.</summary>
    public void SetTiming(string modelKey, ModelTiming timing)
    {
        lock (gate) contents.Timings[modelKey] = timing;
    }

    /// <summary>The recorded timing of one model on TorchSharp and on ONNX Runtime (by the key the sampling command makes), or null.</summary>
    public EngineTiming? EngineTiming(string modelKey)
    {
        lock (gate) return contents.EngineTimings.TryGetValue(modelKey, out var timing) ? timing : null;
    }

    /// <summary>Records the timing of one model on both sampling engines.</summary>
    public void SetEngineTiming(string modelKey, EngineTiming timing)
    {
        lock (gate) contents.EngineTimings[modelKey] = timing;
    }

    /// <summary>Writes the file (temp file, then rename); a cache that cannot be written is only a slower next start.</summary>
    public void Save()
    {
        string json;
        lock (gate) json = JsonSerializer.Serialize(contents, JsonOptions);
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            string temporary = $"{Path}.{Environment.ProcessId}.tmp";
            File.WriteAllText(temporary, json);
            File.Move(temporary, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>A loaded library's size and modification time: another libtorch build gives another key.</summary>
    private static string LibraryIdentity(string fileName)
    {
        if (AllocatorPreload.LoadedLibrary(fileName) is not { } path || !File.Exists(path)) return "not loaded";
        var info = new FileInfo(path);
        return $"{info.Length}@{info.LastWriteTimeUtc:yyyyMMddHHmmss}";
    }

    private sealed class Contents
    {
        [JsonPropertyName("version")] public int Version { get; set; }
        [JsonPropertyName("key")] public string[] Key { get; set; } = [];
        [JsonPropertyName("mkl_vendor_dispatch")] public bool? MklVendorDispatch { get; set; }
        [JsonPropertyName("convolutions")] public Dictionary<string, ConvolutionCheckResult> Convolutions { get; set; } = new(StringComparer.Ordinal);
        [JsonPropertyName("model_timings")] public Dictionary<string, ModelTiming> Timings { get; set; } = new(StringComparer.Ordinal);
        [JsonPropertyName("engine_timings")] public Dictionary<string, EngineTiming> EngineTimings { get; set; } = new(StringComparer.Ordinal);
    }
}

/// <summary>One convolution shape's check: whether oneDNN agreed with float64 (forward, input and weight gradients).</summary>
/// <param name="OneDnnPassed">oneDNN's results agreed with the float64 reference and were finite.</param>
/// <param name="OneDnnError">oneDNN's largest error, relative to the reference's largest magnitude (infinite: not finite).</param>
/// <param name="OwnError">The same for libtorch's own kernels.</param>
internal sealed record ConvolutionCheckResult(
    [property: JsonPropertyName("onednn_passed")] bool OneDnnPassed,
    [property: JsonPropertyName("onednn_error")] double OneDnnError,
    [property: JsonPropertyName("own_error")] double OwnError);

/// <summary>One model's timing pass on each backend, in milliseconds (the faster of two runs).</summary>
internal sealed record ModelTiming(
    [property: JsonPropertyName("own_ms")] double OwnMilliseconds,
    [property: JsonPropertyName("onednn_ms")] double OneDnnMilliseconds);

/// <summary>One model call on each sampling engine, in milliseconds (the faster of two runs).</summary>
internal sealed record EngineTiming(
    [property: JsonPropertyName("torch_ms")] double TorchMilliseconds,
    [property: JsonPropertyName("onnx_ms")] double OnnxMilliseconds);
