using System.CommandLine;
using System.Runtime.CompilerServices;

namespace Ddpm.Cli;

/// <summary>
/// `ddpm serve [RUNS_FOLDER]`: the runs folder's page and HTTP API (Ddpm.Server). This class names no ASP.NET type: the web
/// stack loads only when the command runs (<see cref="Serve"/>), so `ddpm --version` and the other commands do not load it.
/// </summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter output)
    {
        var folder = new Argument<string>("runs-folder") { Description = "The folder of runs to serve (ddpm train's runs/ by default).", DefaultValueFactory = _ => "runs" };
        var host = new Option<string>("--host") { Description = "The address to listen on: 127.0.0.1 (the default: this machine only), 0.0.0.0 for every interface, or another IP address.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "The port (0: a free one, printed on start).", DefaultValueFactory = _ => 8080 };
        var workers = new Option<int>("--workers") { Description = "Sampling jobs that run at once (default: one per core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var queue = new Option<int>("--queue") { Description = "Sampling jobs that may wait for a worker; more are answered 503 with Retry-After (default: one per core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("serve", "Serve a page and an HTTP API over a runs folder: runs, live loss and evaluation curves, sample grids, sampling from checkpoints and .onnx models. Read-only; no user accounts (docs/serving.md).")
        {
            folder, host, port, workers, queue,
        };
        Options.Between(port, 0, 65535);
        Options.Between(workers, 1, 1024);
        Options.Between(queue, 0, 1 << 16);
        command.SetAction((parse, cancellationToken) =>
        {
            string root = parse.GetValue(folder)!;
            if (!Directory.Exists(root))
                throw new UsageException(File.Exists(root) ? $"{root} is a file; give the folder that holds the runs." : $"the runs folder '{root}' does not exist.");
            return Serve(root, parse.GetValue(host)!, parse.GetValue(port), parse.GetValue(workers), parse.GetValue(queue), output, cancellationToken);
        });
        return command;
    }

    /// <summary>Runs the server until Ctrl+C (or SIGTERM). Not inlined: the JIT meets the server's types only here.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<int> Serve(string root, string host, int port, int workers, int queue, TextWriter output, CancellationToken cancellationToken)
    {
        Ddpm.Server.DdpmServer server;
        try
        {
            server = await Ddpm.Server.DdpmServer.StartAsync(new Ddpm.Server.ServerOptions
            {
                RunsFolder = root, Host = host, Port = port, Workers = workers, QueueLength = queue, MaxCount = SampleCommand.MaxCount,
            }, cancellationToken);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(DdpmCli.Describe(e));
        }
        catch (IOException e)
        {
            throw new UsageException($"--host {host} --port {port}: cannot listen there ({DdpmCli.Describe(e).TrimEnd('.')}); choose another --port, or 0 for a free one.");
        }
        await using (server)
        {
            output.WriteLine($"ddpm serve: {server.Root} at {server.Url} (read-only; Ctrl+C stops)");
            try
            {
                await server.WaitForShutdownAsync(cancellationToken);
            }
            catch (OperationCanceledException) { }
        }
        output.WriteLine("ddpm serve: stopped");
        return DdpmCli.Ok;
    }
}
