using System.Diagnostics;
using System.Text.Json;

namespace Ddpm.Cli.Tests;

/// <summary>
/// The built ddpm program as a child process: on Linux it restarts itself with the tcmalloc the
/// build bundled next to it (build/NativeAllocator.cs), honours DDPM_MALLOC and keeps exit codes.
/// </summary>
[Collection("cli")]
public sealed class AllocatorRestartTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-alloc-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static string Bundled => Path.Combine(AppContext.BaseDirectory, "libtcmalloc_minimal.so.4");

    private static (int Code, string Out, string Err) RunDdpm(string? malloc, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ddpm.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        foreach (string variable in new[] { "LD_PRELOAD", "DDPM_MALLOC", "DDPM_MALLOC_RESTARTED" })
            start.Environment.Remove(variable);
        if (malloc is not null) start.Environment["DDPM_MALLOC"] = malloc;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "ddpm did not finish in 3 minutes");
        return (process.ExitCode, stdout.Result, stderr);
    }

    private string AllocatorOfBench(string? malloc)
    {
        string json = Path.Combine(root, $"bench-{malloc ?? "auto"}.json");
        var (code, _, error) = RunDdpm(malloc, "bench", "--steps", "1", "--batch-size", "2", "--sample-batch", "1", "--json", json);
        Assert.True(code == 0, error);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        return document.RootElement.GetProperty("allocator").GetString()!;
    }

    private static void SkipUnlessLinux() =>
        Skip.IfNot(OperatingSystem.IsLinux(), "ddpm restarts itself with tcmalloc on Linux only");

    [SkippableFact]
    public void By_default_ddpm_runs_on_the_bundled_tcmalloc()
    {
        SkipUnlessLinux();
        string allocator = AllocatorOfBench(null);
        // The build bundles tcmalloc when it could fetch it; without it the fallback is tuned glibc.
        Assert.Equal(File.Exists(Bundled) ? $"tcmalloc (preloaded: {Bundled})" : "glibc malloc tuned (no mmap, no trim, one arena)", allocator);
    }

    [SkippableFact]
    public void DDPM_MALLOC_glibc_keeps_glibc_tuned_and_default_leaves_it_alone()
    {
        SkipUnlessLinux();
        Assert.Equal("glibc malloc tuned (no mmap, no trim, one arena)", AllocatorOfBench("glibc"));
        Assert.Equal("default (tuning switched off)", AllocatorOfBench("default"));
    }

    [SkippableFact]
    public void The_restarted_process_keeps_arguments_and_exit_codes()
    {
        SkipUnlessLinux();
        var (code, _, error) = RunDdpm(null, "sample", "no such file.ckpt");
        Assert.Equal(2, code);
        Assert.Equal("ddpm: Checkpoint 'no such file.ckpt' does not exist.", error.Trim()); // the space survived the restart
        Assert.Equal(0, RunDdpm(null, "--help").Code);
    }

    [SkippableTheory]
    [InlineData("jemalloc", "ddpm: DDPM_MALLOC=jemalloc is not one of auto, tcmalloc, glibc, default or a path to an allocator library.")]
    [InlineData("/no/such/libjemalloc.so.2", "ddpm: DDPM_MALLOC=/no/such/libjemalloc.so.2: no such file.")]
    public void A_bad_DDPM_MALLOC_is_one_clear_error(string malloc, string message)
    {
        SkipUnlessLinux();
        var (code, output, error) = RunDdpm(malloc, "inspect", "FashionMnistUNet");
        Assert.Equal(2, code);
        Assert.Equal(message, error.Trim());
        Assert.Equal("", output);
    }
}
