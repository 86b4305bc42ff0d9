namespace Ddpm.Server;

/// <summary>What <c>ddpm serve</c> serves and its limits.</summary>
public sealed class ServerOptions
{
    /// <summary>The folder whose run folders (what <c>ddpm train</c> writes) and exported <c>.onnx</c> models are served.</summary>
    public required string RunsFolder { get; init; }

    /// <summary>The address to listen on: loopback unless asked otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The port; 0 takes a free one.</summary>
    public int Port { get; init; } = 8080;

    /// <summary>The most images one sampling request may ask for (the CLI passes `ddpm sample`'s limit).</summary>
    public required int MaxCount { get; init; }

    /// <summary>Sampling jobs that run at once: one per core by default.</summary>
    public int Workers { get; init; } = Environment.ProcessorCount;

    /// <summary>Sampling jobs that may wait for a worker; past that a request is answered 503 with Retry-After.</summary>
    public int QueueLength { get; init; } = Environment.ProcessorCount;

    /// <summary>Models kept loaded (checkpoint and weights, or .onnx file), least recently used dropped first.</summary>
    public int CachedModels { get; init; } = 4;

    /// <summary>Finished jobs whose results are kept for GET /api/jobs/{id}/result.</summary>
    public int KeptJobs { get; init; } = 64;

    /// <summary>Where the sample outputs go (the only files the server writes); default a new folder under the temp folder, removed on stop.</summary>
    public string? OutputFolder { get; init; }
}
