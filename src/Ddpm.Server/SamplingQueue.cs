using System.Collections.Concurrent;

namespace Ddpm.Server;

/// <summary>
/// The bounded queue every sampling request goes through: at most <c>workers</c> jobs run at once, at most
/// <c>waiting</c> more wait; a job past that is refused (the caller answers 503 with Retry-After). Finished jobs are kept
/// (their results in the output folder) up to <c>kept</c>, the oldest dropped first with its files.
/// </summary>
internal sealed class SamplingQueue(int workers, int waiting, int kept) : IDisposable
{
    private readonly SemaphoreSlim running = new(Math.Max(1, workers), Math.Max(1, workers));
    private readonly ConcurrentDictionary<string, Job> jobs = new();
    private readonly ConcurrentQueue<Job> finished = new();
    private int admitted;

    public int Capacity { get; } = Math.Max(1, workers) + Math.Max(0, waiting);

    /// <summary>Starts <paramref name="work"/> as a job, or returns null when the queue is full.</summary>
    public Job? TryStart(string description, Func<Job, CancellationToken, JobResult> work)
    {
        if (Interlocked.Increment(ref admitted) > Capacity)
        {
            Interlocked.Decrement(ref admitted);
            return null;
        }
        var job = new Job(Guid.NewGuid().ToString("N")[..16], description);
        jobs[job.Id] = job;
        job.Completion = Run(job, work);
        return job;
    }

    public Job? Find(string id) => jobs.TryGetValue(id, out var job) ? job : null;

    public IEnumerable<Job> All => jobs.Values.OrderBy(j => j.Created);

    private async Task Run(Job job, Func<Job, CancellationToken, JobResult> work)
    {
        try
        {
            await running.WaitAsync(job.Token).ConfigureAwait(false);
            try
            {
                job.MarkRunning();
                // Sampling is long CPU work: a thread of its own, not one of the pool's.
                var result = await Task.Factory.StartNew(() => work(job, job.Token), job.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                                              .ConfigureAwait(false);
                job.Finish(result);
            }
            finally
            {
                running.Release();
            }
        }
        catch (OperationCanceledException) when (job.Token.IsCancellationRequested)
        {
            job.Fail(JobStatus.Cancelled, "the job was cancelled (its client went away).");
        }
        catch (ApiError e)
        {
            job.Fail(JobStatus.Failed, e.Message, e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            job.Fail(JobStatus.Failed, ApiError.Describe(e));
        }
        finally
        {
            Interlocked.Decrement(ref admitted);
            finished.Enqueue(job);
            while (finished.Count > Math.Max(1, kept) && finished.TryDequeue(out var old))
            {
                jobs.TryRemove(old.Id, out _);
                old.DeleteResult();
            }
        }
    }

    public void Dispose()
    {
        foreach (var job in jobs.Values) job.Cancel();
    }
}

/// <summary>Where a job is.</summary>
public enum JobStatus { Queued, Running, Done, Failed, Cancelled }

/// <summary>What a finished job made: a file in the output folder and its media type.</summary>
internal sealed record JobResult(string Path, string ContentType, string FileName);

/// <summary>One sampling request on its way through the queue.</summary>
#pragma warning disable CA1001 // a CancellationTokenSource without timers or linked tokens holds nothing to release
internal sealed class Job(string id, string description)
{
    private readonly CancellationTokenSource cancel = new();
    public string Id { get; } = id;
    public string Description { get; } = description;
    public DateTime Created { get; } = DateTime.UtcNow;
    public JobStatus Status { get; private set; } = JobStatus.Queued;
    public SamplingProgress? Progress { get; private set; }
    /// <summary>The model calls made when cancellation was asked for, so a test can see the draw stop within one step.</summary>
    public int? CallsAtCancel { get; private set; }
    public string? Error { get; private set; }
    public ApiError? Refusal { get; private set; }
    public JobResult? Result { get; private set; }
    public Task Completion { get; set; } = Task.CompletedTask;
    public CancellationToken Token => cancel.Token;

    public void Report(SamplingProgress progress) => Progress = progress;
    public void MarkRunning() => Status = JobStatus.Running;
    public void Finish(JobResult result) { Result = result; Status = JobStatus.Done; }
    public void Fail(JobStatus status, string error, ApiError? refusal = null) { Error = error; Refusal = refusal; Status = status; }

    public void Cancel()
    {
        if (Status is JobStatus.Done or JobStatus.Failed or JobStatus.Cancelled) return;
        CallsAtCancel ??= Progress?.ModelCalls ?? 0;
        try { cancel.Cancel(); } catch (ObjectDisposedException) { }
    }

    public void DeleteResult()
    {
        if (Result is { } r)
            try { File.Delete(r.Path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
#pragma warning restore CA1001
