using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Ddpm.Cli.Tests;

/// <summary>`ddpm serve`: its refusals as one line each, and the built program serving a folder until Ctrl+C (SIGINT).</summary>
[Collection("cli")]
public sealed class ServeCommandTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-serve-cli-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    [Fact]
    public void Bad_folders_ports_and_hosts_are_one_usage_line()
    {
        string missing = Path.Combine(root, "missing");
        string file = Path.Combine(root, "file.txt");
        File.WriteAllText(file, "x");
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        int taken = ((IPEndPoint)busy.LocalEndpoint).Port;
        (string[] Args, string Line)[] cases =
        [
            (["serve", missing], $"ddpm: the runs folder '{missing}' does not exist."),
            (["serve", file], $"ddpm: {file} is a file; give the folder that holds the runs."),
            (["serve", root, "--port", "70000"], "ddpm: --port must be from 0 to 65535, got 70000."),
            (["serve", root, "--port", "http"], "ddpm: --port must be a whole number from 0 to 65535, got 'http'."),
            (["serve", root, "--workers", "0"], "ddpm: --workers must be from 1 to 1024, got 0."),
            (["serve", root, "--host", "example.org"], "ddpm: --host must be an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost, got 'example.org'."),
        ];
        foreach (var (args, line) in cases)
        {
            var (code, _, error) = InProcessCli.Ddpm(args);
            Assert.True(code == 2, $"{string.Join(' ', args)}: exit {code}, {error}");
            Assert.Equal(line, error.Split('\n', StringSplitOptions.RemoveEmptyEntries).First().Trim());
            Assert.DoesNotContain("   at ", error);
        }
        var (busyCode, _, busyError) = InProcessCli.Ddpm("serve", root, "--port", taken.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2, busyCode);
        Assert.StartsWith($"ddpm: --host 127.0.0.1 --port {taken}: cannot listen there (", busyError.Trim());
        Assert.EndsWith("choose another --port, or 0 for a free one.", busyError.Trim());
    }

    [SkippableFact]
    public async Task The_built_ddpm_serves_a_folder_on_a_free_loopback_port_and_stops_on_ctrl_c()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the test sends SIGINT with kill(1)");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "ddpm.dll"), "serve", root, "--port", "0" }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            string first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(1)) ?? "";
            var match = System.Text.RegularExpressions.Regex.Match(first, @"^ddpm serve: (.+) at (http://127\.0\.0\.1:(\d+)/) \(read-only; Ctrl\+C stops\)$");
            Assert.True(match.Success, $"first line: '{first}', stderr: {(process.HasExited ? await error : "")}");
            Assert.Equal(Path.GetFullPath(root), match.Groups[1].Value);
            Assert.NotEqual("0", match.Groups[3].Value);
            using var client = new HttpClient { BaseAddress = new Uri(match.Groups[2].Value) };
            Assert.Equal("[]", await client.GetStringAsync("/api/runs"));
            string page = await client.GetStringAsync("/");
            Assert.Contains("<table id=\"runs\">", page);
            Assert.DoesNotContain("http://", page.Replace("http://www.w3.org", "")); // nothing fetched from elsewhere
            // A process started in the background without job control inherits SIGINT ignored (as nohup'd jobs and
            // `cmd &` in scripts do), and so does ddpm: there Ctrl+C cannot reach it, so it is stopped with SIGTERM.
            string signal = SigintIgnored() ? "TERM" : "INT";
            using (var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(20)), $"ddpm serve did not stop within 20 s of SIG{signal}");
            Assert.Equal(0, process.ExitCode);
            Assert.Equal("ddpm serve: stopped", (await process.StandardOutput.ReadToEndAsync()).Trim());
            Assert.Equal("", (await error).Trim());
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    /// <summary>Whether this process ignores SIGINT (bit 1 of SigIgn in /proc/self/status); children inherit that.</summary>
    private static bool SigintIgnored()
    {
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << 1)) != 0;
    }
}
