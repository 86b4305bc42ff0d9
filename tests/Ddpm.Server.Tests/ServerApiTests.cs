using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Ddpm.Data;
using Ddpm.Onnx;
using Ddpm.Server;
using Ddpm.Training;

namespace Ddpm.Server.Tests;

/// <summary>The HTTP API of ddpm serve on a real Kestrel on loopback, over a runs folder the tests make.</summary>
public sealed class ServerApiTests(TinyRuns runs) : IClassFixture<TinyRuns>
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static async Task<(HttpStatusCode Status, JsonElement Body, string Text)> Post(HttpClient client, string url, string body)
    {
        using var response = await client.PostAsync(url, new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        JsonElement json = default;
        if (response.Content.Headers.ContentType?.MediaType == "application/json") json = JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, json, text);
    }

    private static HttpClient Client(DdpmServer server) => new() { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromMinutes(2) };

    [Fact]
    public async Task The_runs_list_and_a_runs_metrics_are_what_its_files_hold()
    {
        await using var server = await TinyRuns.Start(runs.Runs);
        using var client = Client(server);
        var list = await client.GetFromJsonAsync<JsonElement>("/api/runs");
        // "linked" leads out of the folder and is not listed.
        Assert.Equal(["cond", "tiny"], list.EnumerateArray().Select(r => r.GetProperty("name").GetString()!).ToArray());
        var tiny = list.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "tiny");
        Assert.Equal("TinyUNet", tiny.GetProperty("model").GetString());
        Assert.Equal(2, tiny.GetProperty("step").GetInt64());
        Assert.Equal(2, tiny.GetProperty("totalSteps").GetInt64());
        Assert.Equal("finished", tiny.GetProperty("status").GetString());
        Assert.Equal(0.25, tiny.GetProperty("lastLoss").GetDouble());
        Assert.Equal(98.75, tiny.GetProperty("bestFid").GetDouble());
        Assert.Equal(0.2, tiny.GetProperty("bestKid").GetDouble());
        Assert.Equal(["last"], tiny.GetProperty("checkpoints").EnumerateArray().Select(c => c.GetString()!).ToArray());
        Assert.Equal(JsonValueKind.Null, tiny.GetProperty("classNames").ValueKind);
        var cond = list.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "cond");
        Assert.Equal(["vertical bar", "horizontal bar", "box"], cond.GetProperty("classNames").EnumerateArray().Select(c => c.GetString()!).ToArray());

        var metrics = await client.GetFromJsonAsync<JsonElement>("/api/runs/tiny/metrics");
        var loss = metrics.GetProperty("loss").EnumerateArray().Select(p => (p.GetProperty("step").GetInt64(), p.GetProperty("loss").GetDouble(),
                                                                            p.GetProperty("learningRate").GetDouble(), p.GetProperty("gradNorm").GetDouble())).ToArray();
        Assert.Equal([(1L, 0.5, 0.001, 1.5), (2L, 0.25, 0.001, 1.25)], loss);
        var evaluation = metrics.GetProperty("evaluation").EnumerateArray()
            .Select(e => (e.GetProperty("step").GetInt64(), e.GetProperty("weights").GetString(), e.GetProperty("fid").GetDouble(), e.GetProperty("kidMean").GetDouble())).ToArray();
        Assert.Equal([(1L, "ema", 120.5, 0.25), (1L, "raw", 130.25, 0.3), (2L, "ema", 98.75, 0.2), (2L, "raw", 110.0, 0.22)], evaluation);
        // The grid the run wrote; the link out of the folder (step-000099.png) is not offered.
        var samples = metrics.GetProperty("samples").EnumerateArray().Select(s => s.GetProperty("url").GetString()!).ToArray();
        Assert.Contains("/api/runs/tiny/samples/step-000002.png", samples);
        using var grid = await client.GetAsync("/api/runs/tiny/samples/step-000002.png");
        Assert.Equal(HttpStatusCode.OK, grid.StatusCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(runs.Tiny, "samples", "step-000002.png")), await grid.Content.ReadAsByteArrayAsync());

        // Only the rows after 'since'.
        var later = await client.GetFromJsonAsync<JsonElement>("/api/runs/tiny/metrics?since=1");
        Assert.Equal([2L], later.GetProperty("loss").EnumerateArray().Select(p => p.GetProperty("step").GetInt64()).ToArray());
    }

    [Fact]
    public async Task A_row_being_written_is_read_once_whole_and_a_held_run_lock_reads_as_training()
    {
        string folder = Path.Combine(runs.Runs, "live");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(runs.Tiny, "config.yaml"), Path.Combine(folder, "config.yaml"), overwrite: true);
        string csv = Path.Combine(folder, "loss.csv");
        File.WriteAllText(csv, "step,loss,lr,grad_norm\n1,0.5,0.001,1\n2,0.4");
        try
        {
            await using var server = await TinyRuns.Start(runs.Runs);
            using var client = Client(server);
            var run = await client.GetFromJsonAsync<JsonElement>("/api/runs/live");
            Assert.Equal(1, run.GetProperty("step").GetInt64()); // "2,0.4" has no newline yet
            Assert.Equal("stopped", run.GetProperty("status").GetString());
            File.AppendAllText(csv, "5,0.001,1\n");
            run = await client.GetFromJsonAsync<JsonElement>("/api/runs/live");
            Assert.Equal(2, run.GetProperty("step").GetInt64());
            Assert.Equal(0.45, run.GetProperty("lastLoss").GetDouble());

            // Held the way ddpm train holds it (RunFolderLock: an exclusive lock, its process id inside).
            string lockPath = Path.Combine(folder, "run.lock");
            using (var held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, OperatingSystem.IsWindows() ? FileShare.Read : FileShare.None))
            {
                held.Write(Encoding.ASCII.GetBytes(Environment.ProcessId + "\n"));
                held.Flush();
                run = await client.GetFromJsonAsync<JsonElement>("/api/runs/live");
                Assert.Equal("training", run.GetProperty("status").GetString());
            }
            // The probe took no lock: another exclusive holder gets it at once.
            using (new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) { }
            run = await client.GetFromJsonAsync<JsonElement>("/api/runs/live");
            Assert.Equal("finished", run.GetProperty("status").GetString()); // the file stays, nobody holds it, and step 2 is the last of 2
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    public static TheoryData<string, string, string, string> BadRequests => new()
    {
        // url, body, field, words of the message
        { "/api/runs/tiny/sample", """{"count": 0}""", "count", "count must be from 1 to 4096, got 0." },
        { "/api/runs/tiny/sample", """{"count": 4097}""", "count", "count must be from 1 to 4096, got 4097." },
        { "/api/runs/tiny/sample", """{"count": "many"}""", "count", "count must be a whole number from 1 to 4096, got \"many\"." },
        { "/api/runs/tiny/sample", """{"count": 2.5}""", "count", "count must be a whole number" },
        { "/api/runs/tiny/sample", """{"steps": 0}""", "steps", "steps must be from 1 to" },
        { "/api/runs/tiny/sample", """{"steps": 21}""", "steps", "steps 21 exceeds the schedule's 20 timesteps." },
        { "/api/runs/tiny/sample", """{"eta": 1.5}""", "eta", "eta must be in [0, 1], got 1.5." },
        { "/api/runs/tiny/sample", """{"eta": "x"}""", "eta", "eta must be a finite number" },
        { "/api/runs/tiny/sample", """{"seed": 1.5}""", "seed", "seed must be a whole number" },
        { "/api/runs/tiny/sample", """{"seed": 99999999999999999999}""", "seed", "seed must be a whole number" },
        { "/api/runs/tiny/sample", """{"sampler": "euler"}""", "sampler", "sampler must be ddpm, ddim, dpmpp-2m, dpmpp-2m-sde, got 'euler'." },
        { "/api/runs/tiny/sample", """{"sampler": 3}""", "sampler", "sampler must be a string, got a number." },
        { "/api/runs/tiny/sample", """{"weights": "best"}""", "weights", "weights must be auto, ema, raw, got 'best'." },
        { "/api/runs/tiny/sample", """{"checkpoint": "middle"}""", "checkpoint", "checkpoint must be last, best, got 'middle'." },
        { "/api/runs/tiny/sample", """{"checkpoint": "best"}""", "checkpoint", "run 'tiny' has no best.ckpt" },
        { "/api/runs/tiny/sample", """{"format": "gif"}""", "format", "format must be png, npy, got 'gif'." },
        { "/api/runs/tiny/sample", """{"async": "yes"}""", "async", "async must be true or false" },
        { "/api/runs/tiny/sample", """{"colour": "red"}""", "colour", "unknown field 'colour'" },
        { "/api/runs/tiny/sample", """{"count": 1, "count": 2}""", "count", "count is given twice." },
        { "/api/runs/tiny/sample", """not json""", "body", "the body is not JSON" },
        { "/api/runs/tiny/sample", """[1, 2]""", "body", "the body must be a JSON object" },
        { "/api/runs/tiny/sample", """{"class": "box"}""", "class", "TinyUNet is not class-conditional: class and guidance do not apply to it." },
        { "/api/runs/tiny/sample", """{"guidance": 2}""", "guidance", "TinyUNet is not class-conditional" },
        { "/api/runs/tiny/sample", """{"model": "tiny/model.onnx"}""", "model", "model names an .onnx file" },
        { "/api/runs/cond/sample", """{}""", "class", "TinyConditionalUNet is class-conditional: give class, a class name or index (0 vertical bar, 1 horizontal bar, 2 box)" },
        { "/api/runs/cond/sample", """{"class": "zebra"}""", "class", "class zebra:" },
        { "/api/runs/cond/sample", """{"class": 7}""", "class", "class 7:" },
        { "/api/runs/cond/sample", """{"class": ""}""", "class", "class is empty" },
        { "/api/runs/cond/sample", """{"class": "box", "guidance": 101}""", "guidance", "guidance must be in [0, 100], got 101." },
        { "/api/runs/cond/sample", """{"class": "box", "guidance": -1}""", "guidance", "guidance must be in [0, 100], got -1." },
        { "/api/onnx/sample", """{}""", "model", "model is required" },
        { "/api/onnx/sample", """{"model": "tiny/model.onnx", "checkpoint": "last"}""", "checkpoint", "checkpoint applies to a run's checkpoints, not to an .onnx model" },
        { "/api/onnx/sample", """{"model": "tiny/model.onnx", "weights": "ema"}""", "weights", "weights applies to a run's checkpoints" },
        { "/api/onnx/sample", """{"model": "tiny/config.yaml"}""", "model", "model 'tiny/config.yaml' is not an .onnx file." },
        { "/api/onnx/sample", """{"model": "tiny/model.onnx", "steps": 50}""", "steps", "steps 50 exceeds the schedule's 20 timesteps." },
        { "/api/onnx/sample", """{"model": "tiny/model.onnx", "class": "box"}""", "class", "TinyUNet is not class-conditional" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Every_bad_field_is_one_400_naming_it(string url, string body, string field, string words)
    {
        await using var server = await TinyRuns.Start(runs.Runs);
        using var client = Client(server);
        var (status, json, text) = await Post(client, url, body);
        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status}: {text}");
        Assert.Equal(field, json.GetProperty("field").GetString());
        Assert.Contains(words, json.GetProperty("error").GetString());
        Assert.DoesNotContain("   at ", text);
        Assert.Equal(2, json.EnumerateObject().Count()); // error and field, nothing else
    }

    /// <summary>Sends the path exactly as written (HttpClient would normalise dot segments).</summary>
    private static async Task<(int Status, string Body)> Raw(DdpmServer server, string method, string path, string? body = null)
    {
        var uri = new Uri(server.Url);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        using var stream = tcp.GetStream();
        byte[] content = Encoding.UTF8.GetBytes(body ?? "");
        string head = $"{method} {path} HTTP/1.1\r\nHost: {uri.Authority}\r\nConnection: close\r\n" +
                      (body is null ? "" : $"Content-Type: application/json\r\nContent-Length: {content.Length}\r\n") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(content);
        string answer = await new StreamReader(stream, Encoding.UTF8).ReadToEndAsync();
        int status = int.Parse(answer.Split(' ')[1]);
        return (status, answer[(answer.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
    }

    public static TheoryData<string, string, string?> Traversals => new()
    {
        // method, path as sent, body
        { "GET", "/api/runs/%2e%2e/metrics", null },
        { "GET", "/api/runs/..%2Foutside%2Foutrun/metrics", null },
        { "GET", "/api/runs/..%5Coutside/metrics", null },
        { "GET", "/api/runs/%2Ftmp/metrics", null },
        { "GET", "/api/runs/linked", null },
        { "GET", "/api/runs/linked/metrics", null },
        { "GET", "/api/runs/tiny/samples/step-000099.png", null },
        { "GET", "/api/runs/tiny/samples/..%2F..%2F..%2Foutside%2Fsecret.png", null },
        { "GET", "/api/runs/tiny/samples/%2e%2e%2fconfig.yaml", null },
        { "GET", "/api/runs/tiny/%2e%2e/%2e%2e/outside/outrun/metrics", null },
        { "GET", "/api/runs/tiny/samples/config.yaml", null },
        { "POST", "/api/runs/linked/sample", "{}" },
        { "POST", "/api/runs/%2e%2e/sample", "{}" },
        { "POST", "/api/onnx/sample", """{"model": "../outside/secret.onnx"}""" },
        { "POST", "/api/onnx/sample", """{"model": "tiny/../../outside/secret.onnx"}""" },
        { "POST", "/api/onnx/sample", """{"model": "%2e%2e/outside/secret.onnx"}""" },
        { "POST", "/api/onnx/sample", """{"model": "/etc/passwd.onnx"}""" },
        { "POST", "/api/onnx/sample", """{"model": "evil.onnx"}""" },
        { "POST", "/api/onnx/sample", """{"model": "linked/../../outside/secret.onnx"}""" },
        { "POST", "/api/onnx/sample", """{"model": "tiny\\..\\..\\outside\\secret.onnx"}""" },
    };

    [Theory]
    [MemberData(nameof(Traversals))]
    public async Task Paths_that_leave_the_runs_folder_are_refused(string method, string path, string? body)
    {
        await using var server = await TinyRuns.Start(runs.Runs);
        var (status, text) = await Raw(server, method, path, body);
        Assert.True(status is 400 or 404, $"{status}: {text}");
        Assert.DoesNotContain("not for the server", text);
        Assert.DoesNotContain("   at ", text);
        if (status == 400) Assert.Matches("\"field\":\"(run|file|model)\"", text);
    }

    [Fact]
    public async Task The_listings_leave_out_links_that_leave_the_folder()
    {
        await using var server = await TinyRuns.Start(runs.Runs);
        using var client = Client(server);
        var onnx = await client.GetFromJsonAsync<JsonElement>("/api/onnx");
        Assert.Equal(["tiny/model.onnx"], onnx.EnumerateArray().Select(m => m.GetProperty("path").GetString()!).ToArray());
    }

    [Fact]
    public async Task The_OpenAPI_document_lists_every_endpoint()
    {
        await using var server = await TinyRuns.Start(runs.Runs);
        using var client = Client(server);
        var document = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var paths = document.GetProperty("paths");
        string[] expected = ["/api/server", "/api/runs", "/api/runs/{run}", "/api/runs/{run}/metrics", "/api/runs/{run}/samples/{file}", "/api/runs/{run}/sample",
                             "/api/onnx", "/api/onnx/sample", "/api/jobs", "/api/jobs/{id}", "/api/jobs/{id}/result"];
        Assert.Equal(expected.Order(), paths.EnumerateObject().Select(p => p.Name).Order());
        foreach (string sample in new[] { "/api/runs/{run}/sample", "/api/onnx/sample" })
        {
            var post = paths.GetProperty(sample).GetProperty("post");
            Assert.True(post.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
            Assert.Equal(["200", "202", "400", "404", "503"], post.GetProperty("responses").EnumerateObject().Select(r => r.Name).Order());
        }
        Assert.True(document.GetProperty("components").GetProperty("schemas").TryGetProperty("SampleRequestBody", out var schema));
        Assert.True(schema.GetProperty("properties").TryGetProperty("count", out _));
    }

    [Fact]
    public async Task A_full_queue_answers_503_with_Retry_After()
    {
        await using var server = await TinyRuns.Start(runs.Runs, workers: 1, queue: 1);
        using var client = Client(server);
        using var cancel = new CancellationTokenSource();
        // Two long draws: one runs, one waits; the client then goes away, which cancels both.
        var slow = Enumerable.Range(0, 2).Select(_ => client.PostAsync("/api/runs/tiny/sample",
            new StringContent("""{"count": 4096, "sampler": "ddpm"}""", Encoding.UTF8, "application/json"), cancel.Token)).ToArray();
        await WaitFor(client, jobs => jobs.Count(j => j.GetProperty("status").GetString() is "queued" or "running") == 2);
        using var refused = await client.PostAsync("/api/runs/tiny/sample", new StringContent("""{"count": 1}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("5", refused.Headers.GetValues("Retry-After").Single());
        var error = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("the sampling queue is full (2 jobs running or waiting); try again shortly.", error.GetProperty("error").GetString());
        cancel.Cancel();
        foreach (var request in slow) await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        await WaitFor(client, jobs => jobs.All(j => j.GetProperty("status").GetString() == "cancelled"));
        using var accepted = await client.PostAsync("/api/runs/tiny/sample", new StringContent("""{"count": 1}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    private static async Task<JsonElement[]> WaitFor(HttpClient client, Func<JsonElement[], bool> done, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var jobs = (await client.GetFromJsonAsync<JsonElement>("/api/jobs")).EnumerateArray().ToArray();
            if (done(jobs)) return jobs;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("jobs: " + string.Join("; ", jobs.Select(j => j.GetRawText())));
            await Task.Delay(20);
        }
    }

    [Theory]
    [InlineData("/api/runs/tiny/sample", """{"count": 4096, "sampler": "ddpm"}""")]
    [InlineData("/api/onnx/sample", """{"model": "tiny/model.onnx", "count": 4096, "sampler": "ddpm"}""")]
    public async Task A_client_that_goes_away_cancels_its_job_within_one_step(string url, string body)
    {
        await using var server = await TinyRuns.Start(runs.Runs, workers: 1, queue: 0);
        using var client = Client(server);
        using var cancel = new CancellationTokenSource();
        var request = client.PostAsync(url, new StringContent(body, Encoding.UTF8, "application/json"), cancel.Token);
        var running = await WaitFor(client, jobs => jobs.Any(j => j.GetProperty("progress").ValueKind == JsonValueKind.Object &&
                                                                  j.GetProperty("progress").GetProperty("modelCalls").GetInt32() >= 3));
        string id = running.Single().GetProperty("id").GetString()!;
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        var job = (await WaitFor(client, jobs => jobs.Single().GetProperty("status").GetString() == "cancelled", 30)).Single();
        Assert.Equal(id, job.GetProperty("id").GetString());
        int atCancel = job.GetProperty("callsAtCancel").GetInt32();
        int made = job.GetProperty("progress").GetProperty("modelCalls").GetInt32();
        int total = job.GetProperty("progress").GetProperty("totalModelCalls").GetInt32();
        Assert.Equal(64 * 20, total);
        Assert.InRange(made, atCancel, atCancel + 1); // at most the step that was under way
        Assert.True(made < total / 2, $"{made} of {total} calls made");
    }

    [Fact]
    public async Task An_async_job_reports_progress_and_keeps_its_png()
    {
        await using var server = await TinyRuns.Start(runs.Runs);
        using var client = Client(server);
        var (status, job, text) = await Post(client, "/api/runs/cond/sample", """{"class": "all", "count": 5, "async": true, "seed": 4}""");
        Assert.True(status == HttpStatusCode.Accepted, text);
        string id = job.GetProperty("id").GetString()!;
        var done = (await WaitFor(client, jobs => jobs.Any(j => j.GetProperty("id").GetString() == id && j.GetProperty("status").GetString() == "done")))
            .Single(j => j.GetProperty("id").GetString() == id);
        var progress = done.GetProperty("progress");
        Assert.Equal(6, progress.GetProperty("count").GetInt32()); // 'all' rounds up to whole rows of 3 classes
        Assert.Equal(1.0, progress.GetProperty("fraction").GetDouble());
        Assert.Equal($"/api/jobs/{id}/result", done.GetProperty("result").GetString());
        using var png = await client.GetAsync(done.GetProperty("result").GetString());
        Assert.Equal("image/png", png.Content.Headers.ContentType!.MediaType);
        byte[] bytes = await png.Content.ReadAsByteArrayAsync();
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        // One row per class (3 rows of 2) of 8-pixel images with 2-pixel padding, doubled as ddpm sample doubles small images.
        Assert.Equal((2 * (8 + 2) + 2) * 2, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal((3 * (8 + 2) + 2) * 2, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public async Task Twenty_concurrent_checkpoint_requests_each_get_their_own_seeds_images()
    {
        string checkpoint = Path.Combine(runs.Tiny, "checkpoints", "last.ckpt");
        var expected = new Dictionary<int, float[]>();
        using (var model = DiffusionModel.Load(checkpoint))
            for (int i = 0; i < 20; i++)
            {
                using var images = model.Sample(1 + i % 5, steps: 8, seed: 100 + i);
                expected[i] = images.data<float>().ToArray();
            }
        await Concurrent("/api/runs/tiny/sample", i => $$"""{"count": {{1 + i % 5}}, "steps": 8, "seed": {{100 + i}}, "format": "npy"}""", expected);
    }

    [Fact]
    public async Task Twenty_concurrent_onnx_requests_each_get_their_own_seeds_images()
    {
        var expected = new Dictionary<int, float[]>();
        using (var model = OnnxDiffusionModel.Load(runs.Onnx))
            for (int i = 0; i < 20; i++)
                expected[i] = model.Sample(1 + i % 5, SamplerKind.DpmSolver2MSde, steps: 8, seed: 100 + i);
        await Concurrent("/api/onnx/sample", i => $$"""{"model": "tiny/model.onnx", "count": {{1 + i % 5}}, "steps": 8, "seed": {{100 + i}}, "format": "npy"}""", expected);
    }

    private async Task Concurrent(string url, Func<int, string> body, Dictionary<int, float[]> expected)
    {
        var before = runs.Snapshot();
        string output = Path.Combine(runs.Root, "output-" + Guid.NewGuid().ToString("N")[..8]);
        await using (var server = await TinyRuns.Start(runs.Runs, workers: 2, queue: 20, output: output))
        {
            using var client = Client(server);
            var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
            {
                using var response = await client.PostAsync(url, new StringContent(body(i), Encoding.UTF8, "application/json"));
                Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
                Assert.Equal("application/x-npy", response.Content.Headers.ContentType!.MediaType);
                string file = Path.Combine(output, $"got-{i}.npy");
                await File.WriteAllBytesAsync(file, await response.Content.ReadAsByteArrayAsync());
                return (i, Npy.Read(file));
            }));
            Assert.Equal(20, responses.Length);
            foreach (var (i, array) in responses)
            {
                Assert.Equal(new long[] { 1 + i % 5, 1, 8, 8 }, array.Shape);
                float[] got = array.Values.Select(v => (float)v).ToArray();
                Assert.Equal(expected[i].Length, got.Length);
                double own = MaxDifference(got, expected[i]);
                Assert.True(own < 1e-4, $"request {i}: differs from its own seed's images by {own}");
                foreach (var (j, other) in expected)
                    if (j != i && other.Length == got.Length) Assert.True(MaxDifference(got, other) > 1e-2, $"request {i} looks like seed {100 + j}'s images");
            }
            Assert.True(server.LoadedModels <= 2, $"{server.LoadedModels} model instances for 2 workers");
            // The server wrote only its own outputs (and the test its copies).
            Assert.All(Directory.GetFiles(output), f => Assert.Matches(@"^(samples-[0-9a-f]{16}|got-\d+)\.npy$", Path.GetFileName(f)));
        }
        Assert.Equal(before, runs.Snapshot());
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
}
