using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ddpm.Conditioning;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Imaging;
using Ddpm.Onnx;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ddpm.Server;

/// <summary>
/// <c>ddpm serve</c>: a page and an HTTP API over a runs folder: the runs with their curves and grids, read from the files
/// <c>ddpm train</c> writes, and sampling from their checkpoints (TorchSharp) or from exported .onnx models (ONNX Runtime).
/// Read-only: the only files it writes are its own sample outputs, in a folder of its own.
/// </summary>
public sealed class DdpmServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly RunsFolder runs;
    private readonly ModelCache models;
    private readonly SamplingQueue queue;
    private readonly ServerOptions options;
    private readonly string outputFolder;
    private readonly bool ownOutputFolder;

    private DdpmServer(ServerOptions options)
    {
        this.options = options;
        if (options.MaxCount < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxCount, "MaxCount must be at least 1.");
        if (options.Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(options), options.Port, $"--port must be from 0 to 65535, got {options.Port}.");
        var address = Address(options.Host);
        runs = new RunsFolder(options.RunsFolder);
        models = new ModelCache(options.CachedModels, Math.Max(1, options.Workers));
        queue = new SamplingQueue(options.Workers, options.QueueLength, options.KeptJobs);
        ownOutputFolder = options.OutputFolder is null;
        outputFolder = options.OutputFolder ?? Path.Combine(Path.GetTempPath(), $"ddpm-serve-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(outputFolder);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = runs.Root });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(address, options.Port));
        builder.Services.ConfigureHttpJsonOptions(j => Configure(j.SerializerOptions));
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "ddpm serve";
            document.Info.Description = "The runs of a folder written by ddpm train, and sampling from their checkpoints and from exported .onnx models.";
            return Task.CompletedTask;
        }));
        app = builder.Build();
        app.Use(Errors);
        app.MapOpenApi();
        Map(app);
    }

    /// <summary>Starts the server; <see cref="Url"/> then says where it listens.</summary>
    public static async Task<DdpmServer> StartAsync(ServerOptions options, CancellationToken cancellationToken = default)
    {
        var server = new DdpmServer(options);
        try
        {
            await server.app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return server;
    }

    /// <summary>The address it listens on, e.g. http://127.0.0.1:8080/.</summary>
    public string Url
    {
        get
        {
            string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return bound.TrimEnd('/') + "/";
        }
    }

    /// <summary>The runs folder served, as a full path.</summary>
    public string Root => runs.Root;

    /// <summary>Model instances loaded now.</summary>
    internal int LoadedModels => models.Instances;

    /// <summary>Waits until the host stops (Ctrl+C, SIGTERM) or <paramref name="cancellationToken"/> asks.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        queue.Dispose();
        try { await app.StopAsync(TimeSpan.FromSeconds(5) is var t ? new CancellationTokenSource(t).Token : default).ConfigureAwait(false); }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException) { }
        await app.DisposeAsync().ConfigureAwait(false);
        models.Dispose();
        if (ownOutputFolder)
            try { Directory.Delete(outputFolder, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The listening address: an IP address, or localhost (its IPv4 loopback).</summary>
    private static IPAddress Address(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(host, out var address)) return address;
        throw new ArgumentException($"--host must be an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost, got '{RunsFolder.Echo(host)}'.", nameof(host));
    }

    internal static void Configure(JsonSerializerOptions json)
    {
        json.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        json.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals; // an evaluation's NaN stays NaN
        json.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
    }

    /// <summary>Every refusal and failure as one JSON error; never a stack trace.</summary>
    private static async Task Errors(HttpContext context, Func<Task> next)
    {
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            var (status, body) = e switch
            {
                ApiError refusal => (refusal.Status, refusal.Body),
                BadHttpRequestException bad => (bad.StatusCode, (object)new ErrorBody(ApiError.Describe(bad), "body")),
                _ => (StatusCodes.Status500InternalServerError, new ErrorBody(ApiError.Describe(e), null)),
            };
            context.Response.Clear();
            context.Response.StatusCode = status;
            await context.Response.WriteAsJsonAsync(body).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away: nobody to answer.
        }
    }

    private void Map(WebApplication web)
    {
        web.MapGet("/", () => Asset("index.html")).ExcludeFromDescription();
        web.MapGet("/assets/{name}", (string name) => Asset(name)).ExcludeFromDescription();

        var api = web.MapGroup("/api");
        api.MapGet("/server", () => new ServerInfo(runs.Root, options.MaxCount, options.Workers, queue.Capacity, SpecsSamplers, SpecDefaultsSampler))
           .WithName("GetServer").WithSummary("The server's limits: the most images a request may ask for, workers and queue capacity, the samplers.");
        api.MapGet("/runs", () => runs.RunNames().Select(name => RunFiles.Summary(name, runs.Run(name))).ToArray())
           .WithName("ListRuns").WithSummary("The runs in the folder: model, step, status (training, finished, stopped), last loss, best FID.")
           .Produces<RunSummary[]>();
        api.MapGet("/runs/{run}", (string run) => RunFiles.Summary(run, runs.Run(run)))
           .WithName("GetRun").WithSummary("One run's summary.").Produces<RunSummary>().Produces<ErrorBody>(404).Produces<ErrorBody>(400);
        api.MapGet("/runs/{run}/metrics", (string run, long? since) => RunFiles.Read(run, runs.Run(run), since ?? -1))
           .WithName("GetRunMetrics")
           .WithSummary("A run's loss rows (after step 'since', if given), its evaluations (EMA and raw) and its sample grids, as its files hold them.")
           .Produces<RunMetrics>().Produces<ErrorBody>(404).Produces<ErrorBody>(400);
        api.MapGet("/runs/{run}/samples/{file}", (string run, string file) =>
           {
               runs.Run(run);
               if (RunFiles.SampleStep(file) is null) throw ApiError.BadField("file", $"file '{RunsFolder.Echo(file)}' is not a sample grid's name (step-NNNNNN.png).");
               string path = runs.Inside("file", run, "samples", file);
               if (!File.Exists(path)) throw ApiError.NotFound($"run '{run}' has no {file}.");
               return Results.Bytes(File.ReadAllBytes(path), "image/png");
           })
           .WithName("GetRunSampleGrid").WithSummary("A sample grid the run wrote while training.").Produces(200, contentType: "image/png");
        api.MapPost("/runs/{run}/sample", (string run, HttpContext context) => SampleRun(run, context))
           .WithName("SampleRun")
           .WithSummary("Draws images from a run's checkpoint (TorchSharp): a PNG grid or .npy, or with async a job to poll.")
           .Accepts<SampleRequestBody>("application/json")
           .Produces(200, contentType: "image/png").Produces(200, contentType: "application/x-npy").Produces<JobView>(202)
           .Produces<ErrorBody>(400).Produces<ErrorBody>(404).Produces<ErrorBody>(503);
        api.MapGet("/onnx", () => runs.OnnxModels().Select(path => new OnnxModelFile(path, new FileInfo(runs.InsideRelative("model", path)).Length)).ToArray())
           .WithName("ListOnnxModels").WithSummary("The exported .onnx models in the folder and its run folders.").Produces<OnnxModelFile[]>();
        api.MapPost("/onnx/sample", (Delegate)((HttpContext context) => SampleOnnx(context)))
           .WithName("SampleOnnx")
           .WithSummary("Draws images from an exported .onnx model (ONNX Runtime, no libtorch): a PNG grid or .npy, or with async a job to poll.")
           .Accepts<SampleRequestBody>("application/json")
           .Produces(200, contentType: "image/png").Produces(200, contentType: "application/x-npy").Produces<JobView>(202)
           .Produces<ErrorBody>(400).Produces<ErrorBody>(404).Produces<ErrorBody>(503);
        api.MapGet("/jobs", () => queue.All.Select(View).ToArray()).WithName("ListJobs").WithSummary("The sampling jobs queued, running and recently finished.")
           .Produces<JobView[]>();
        api.MapGet("/jobs/{id}", (string id) => View(FindJob(id))).WithName("GetJob").WithSummary("A sampling job: status, progress, result link.")
           .Produces<JobView>().Produces<ErrorBody>(404);
        api.MapGet("/jobs/{id}/result", (string id) =>
           {
               var job = FindJob(id);
               if (job.Result is not { } result) throw new ApiError(StatusCodes.Status409Conflict, $"job {id} is {Word(job.Status)}; it has no result{(job.Error is null ? " yet" : ": " + job.Error)}.");
               return Results.Bytes(File.ReadAllBytes(result.Path), result.ContentType, result.FileName);
           })
           .WithName("GetJobResult").WithSummary("A finished job's PNG grid or .npy.").Produces(200, contentType: "image/png").Produces<ErrorBody>(404).Produces<ErrorBody>(409);
    }

    private static string[] SpecsSamplers => Ddpm.Specs.SpecYaml.SamplerValues;
    private static string SpecDefaultsSampler => Ddpm.Specs.SpecYaml.SamplerValues[(int)SpecDefaults.Sampler];

    private Job FindJob(string id) => queue.Find(id) ?? throw ApiError.NotFound($"no job '{RunsFolder.Echo(id)}' (finished jobs are kept for a while, then dropped).");

    private static IResult Asset(string name)
    {
        using var stream = typeof(DdpmServer).Assembly.GetManifestResourceStream("wwwroot/" + name);
        if (stream is null) throw ApiError.NotFound($"no asset '{RunsFolder.Echo(name)}'.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        string type = Path.GetExtension(name) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            _ => "application/octet-stream",
        };
        return Results.Bytes(copy.ToArray(), type);
    }

    private async Task<IResult> SampleRun(string run, HttpContext context)
    {
        string folder = runs.Run(run);
        var request = await SampleRequest.Read(context.Request, options.MaxCount, onnx: false).ConfigureAwait(false);
        string checkpoint = runs.Inside("checkpoint", run, "checkpoints", request.Checkpoint + ".ckpt");
        if (!File.Exists(checkpoint))
            throw ApiError.BadField("checkpoint", $"run '{run}' has no {request.Checkpoint}.ckpt{(request.Checkpoint == "best" ? " (best.ckpt is written by evaluations during training)" : " yet")}.");
        _ = folder;
        string key = $"torch|{checkpoint}|{request.Weights}";
        IDisposable Load() => DiffusionModel.Load(checkpoint, request.Weights);
        static ModelInfo Describe(IDisposable loaded)
        {
            var model = (DiffusionModel)loaded;
            return new ModelInfo(model.Name, model.Entry.Schedule.Timesteps, model.Conditioning is null ? null : model.ClassNames,
                                 (words, count, guidance) => model.Classes(words, count, guidance) is var c ? (c.Labels, c.Guidance) : default);
        }
        var info = models.Describe(key, checkpoint, Load, Describe, context.RequestAborted);
        var (count, steps, labels, guidance) = Check(request, info);
        var condition = labels is null ? null : new ClassCondition(labels, guidance);
        return await Answer(context, request, $"{run} {request.Checkpoint}.ckpt: {count} images", (job, cancel) =>
        {
            using var lease = models.Rent(key, checkpoint, Load, Describe, cancel);
            var model = (DiffusionModel)lease.Model;
            float[] values;
            using (TorchSharp.torch.NewDisposeScope())
            using (var images = model.Sample(count, request.Sampler, steps, request.Seed, request.Eta, condition, new Reporter(job), cancel))
                values = images.data<float>().ToArray();
            return Write(job, request, values, count, model.Entry.Channels, model.Entry.ImageSize, labels);
        }).ConfigureAwait(false);
    }

    private async Task<IResult> SampleOnnx(HttpContext context)
    {
        var request = await SampleRequest.Read(context.Request, options.MaxCount, onnx: true).ConfigureAwait(false);
        string file = runs.InsideRelative("model", request.Model!);
        if (!string.Equals(Path.GetExtension(file), ".onnx", StringComparison.OrdinalIgnoreCase))
            throw ApiError.BadField("model", $"model '{RunsFolder.Echo(request.Model!)}' is not an .onnx file.");
        if (!File.Exists(file)) throw ApiError.NotFound($"no model '{RunsFolder.Echo(request.Model!)}' in the runs folder.");
        string key = $"onnx|{file}";
        // One ONNX Runtime thread pool per instance, sized so that the workers share the cores.
        int threads = Math.Max(1, Environment.ProcessorCount / Math.Max(1, options.Workers));
        IDisposable Load() => OnnxDiffusionModel.Load(file, threads);
        static ModelInfo Describe(IDisposable loaded)
        {
            var model = (OnnxDiffusionModel)loaded;
            return new ModelInfo(model.Name, model.Schedule.Timesteps, model.IsConditional ? model.ClassNames : null,
                                 (words, count, guidance) => model.ChooseClasses(words, count, guidance) is var c ? (c.Labels, c.Guidance) : default);
        }
        ModelInfo info;
        try
        {
            info = models.Describe(key, file, Load, Describe, context.RequestAborted);
        }
        catch (InvalidDataException e)
        {
            throw ApiError.BadField("model", ApiError.Describe(e));
        }
        var (count, steps, labels, guidance) = Check(request, info);
        var condition = labels is null ? null : new OnnxClassCondition(labels, guidance);
        return await Answer(context, request, $"{request.Model}: {count} images", (job, cancel) =>
        {
            using var lease = models.Rent(key, file, Load, Describe, cancel);
            var model = (OnnxDiffusionModel)lease.Model;
            float[] values = model.Sample(count, request.Sampler, steps, request.Seed, request.Eta, condition: condition,
                                          progress: new Reporter(job), cancellationToken: cancel);
            return Write(job, request, values, count, model.Channels, model.ImageSize, labels);
        }).ConfigureAwait(false);
    }


    /// <summary>The checks that need the model: steps within its schedule, class and guidance by its rule, the count after 'all'.</summary>
    private (int Count, int Steps, IReadOnlyList<int>? Labels, double Guidance) Check(SampleRequest request, ModelInfo info)
    {
        int steps = request.StepsFor(info.Timesteps);
        var chosen = request.ResolveClass(info.Name, info.ClassNames, words => (object)info.ChooseClasses(words, request.Count, request.Guidance));
        if (chosen is not (IReadOnlyList<int> labels, double guidance)) return (request.Count, steps, null, 1);
        if (labels.Count > options.MaxCount)
            throw ApiError.BadField("count", $"class all rounds count up to {labels.Count} (whole rows), more than this server's {options.MaxCount}; ask for fewer.");
        return (labels.Count, steps, labels, guidance);
    }

    /// <summary>Queues the job and answers: 503 when full, 202 with the job when async, else the image once drawn (a client that goes away cancels it).</summary>
    private async Task<IResult> Answer(HttpContext context, SampleRequest request, string description, Func<Job, CancellationToken, JobResult> work)
    {
        var job = queue.TryStart(description, work);
        if (job is null)
        {
            context.Response.Headers.RetryAfter = "5";
            return Results.Json(new ErrorBody($"the sampling queue is full ({queue.Capacity} jobs running or waiting); try again shortly.", null),
                                statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        if (request.Async) return Results.Json(View(job), statusCode: StatusCodes.Status202Accepted);
        using (context.RequestAborted.Register(job.Cancel))
            await job.Completion.ConfigureAwait(false);
        return job.Status switch
        {
            JobStatus.Done => Results.Bytes(File.ReadAllBytes(job.Result!.Path), job.Result.ContentType, job.Result.FileName),
            JobStatus.Cancelled => Results.Empty,
            _ when job.Refusal is { } refusal => throw refusal,
            _ => Results.Json(new ErrorBody(job.Error ?? "sampling failed.", null), statusCode: StatusCodes.Status500InternalServerError),
        };
    }

    /// <summary>Writes a job's images into the output folder: a grid as `ddpm sample` draws it, or the floats as .npy.</summary>
    private JobResult Write(Job job, SampleRequest request, float[] values, int count, int channels, int size, IReadOnlyList<int>? labels)
    {
        Sampling.CheckFinite(values, count);
        string name = $"samples-{job.Id}{(request.Npy ? ".npy" : ".png")}";
        string path = Path.Combine(outputFolder, name);
        if (request.Npy) Npy.Write(path, [count, channels, size, size], values);
        else GridLayout.Render(values, count, channels, size, size, GridLayout.Columns(count, labels), scale: GridLayout.Scale(size)).SavePng(path);
        return new JobResult(path, request.Npy ? "application/x-npy" : "image/png", name);
    }

    private static JobView View(Job job) => new(job.Id, job.Status, job.Description, job.Progress, job.CallsAtCancel, job.Error, job.Refusal?.Field,
                                                job.Result is null ? null : $"/api/jobs/{job.Id}/result");

    private static string Word(JobStatus status) => JsonNamingPolicy.CamelCase.ConvertName(status.ToString());

    /// <summary>Reports a draw's progress into its job, on the sampling thread.</summary>
    private sealed class Reporter(Job job) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress value) => job.Report(value);
    }
}

/// <summary>The server's limits and choices, for clients and the page's form.</summary>
/// <param name="RunsFolder">The folder served.</param>
/// <param name="MaxCount">The most images one request may ask for.</param>
/// <param name="Workers">Jobs that run at once.</param>
/// <param name="QueueCapacity">Jobs that may run or wait at once; more are answered 503.</param>
/// <param name="Samplers">The sampler names.</param>
/// <param name="DefaultSampler">The sampler a request gets when it names none.</param>
public sealed record ServerInfo(string RunsFolder, int MaxCount, int Workers, int QueueCapacity, IReadOnlyList<string> Samplers, string DefaultSampler);

/// <summary>An exported model in the folder.</summary>
/// <param name="Path">Its path inside the runs folder, with '/' separators (the 'model' of /api/onnx/sample).</param>
/// <param name="Bytes">Its size.</param>
public sealed record OnnxModelFile(string Path, long Bytes);

/// <summary>A sampling job as the API shows it.</summary>
/// <param name="Id">The job's id.</param>
/// <param name="Status">queued, running, done, failed or cancelled.</param>
/// <param name="Description">What it draws.</param>
/// <param name="Progress">Model calls made of all, images finished of all (null before the first call).</param>
/// <param name="CallsAtCancel">The model calls made when its cancellation was asked for.</param>
/// <param name="Error">Why it failed or was cancelled.</param>
/// <param name="Field">The request field at fault, for a refusal found while it ran.</param>
/// <param name="Result">Where its PNG or .npy is, once done.</param>
public sealed record JobView(string Id, JobStatus Status, string Description, SamplingProgress? Progress, int? CallsAtCancel, string? Error, string? Field, string? Result);
