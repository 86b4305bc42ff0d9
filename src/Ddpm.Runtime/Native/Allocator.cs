using System.Runtime.InteropServices;

namespace Ddpm.Native;

/// <summary>
/// Reports or tunes the native allocator under libtorch (tcmalloc when preloaded, see
/// <see cref="AllocatorPreload"/>; otherwise glibc's malloc, tuned). libtorch's CPU tensors come from malloc, and by default glibc
/// serves every large buffer with mmap and returns it to the kernel on free, so each op page-faults
/// its output in again. Keeping freed memory in the heap instead roughly halves a training step on
/// the seed model (see docs/performance.md), at the price of a larger resident size.
/// </summary>
public static class Allocator
{
    // mallopt parameters from glibc's malloc.h.
    private const int M_TRIM_THRESHOLD = -1;
    private const int M_TOP_PAD = -2;
    private const int M_MMAP_MAX = -4;
    private const int M_ARENA_MAX = -8;

    /// <summary>Chooses the allocator: see <see cref="AllocatorPreload"/> for the values.</summary>
    public const string EnvironmentVariable = "DDPM_MALLOC";

    /// <summary>What <see cref="Tune"/> found or did, for logs.</summary>
    public static string Status { get; private set; } = "default";

    /// <summary>Why <see cref="AllocatorPreload.RestartIfNeeded"/> could not restart with tcmalloc, if it tried and failed.</summary>
    public static string? RestartProblem { get; internal set; }

    /// <summary>
    /// Call at start-up, after <see cref="AllocatorPreload.RestartIfNeeded"/>: reports a preloaded
    /// allocator (tcmalloc) and otherwise tunes glibc's malloc, on Linux; a no-op elsewhere or when
    /// DDPM_MALLOC=default.
    /// </summary>
    public static string Tune()
    {
        if (PreloadedAllocator() is { } preloaded)
            return Status = $"{preloaded.Name} (preloaded: {preloaded.Path})";
        string why = RestartProblem is not null ? $"; {RestartProblem}"
            : Environment.GetEnvironmentVariable(AllocatorPreload.RestartedVariable) is not null ? "; the preloaded allocator did not load"
            : "";
        if (SwitchedOff())
            return Status = "default (tuning switched off)";
        if (!OperatingSystem.IsLinux())
            return Status = "default (not Linux)";
        try
        {
            bool ok = mallopt(M_MMAP_MAX, 0) == 1                       // never mmap: reuse heap memory
                      & mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1    // never give the heap top back
                      & mallopt(M_TOP_PAD, 64 << 20) == 1               // grow the heap in 64 MiB steps
                      & mallopt(M_ARENA_MAX, 1) == 1;                   // one arena: libtorch's worker threads
                                                                        // would otherwise each keep a heap as big as the peak
            return Status = (ok ? "glibc malloc tuned (no mmap, no trim, one arena)" : "default (mallopt refused)") + why;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return Status = "default (no glibc mallopt, e.g. musl)";
        }
    }

    /// <summary>DDPM_MALLOC=default (or off); read by the one parser of its values. A bad value is reported by the restart step.</summary>
    private static bool SwitchedOff()
    {
        try { return AllocatorPreload.ParseChoice(Environment.GetEnvironmentVariable(EnvironmentVariable)).Choice == AllocatorPreload.Choice.Default; }
        catch (ArgumentException) { return false; }
    }

    /// <summary>An allocator library named in LD_PRELOAD and loaded in this process, or null.</summary>
    public static (string Name, string Path)? PreloadedAllocator()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("LD_PRELOAD") is not { Length: > 0 } preload)
            return null;
        foreach (string entry in preload.Split([':', ' '], StringSplitOptions.RemoveEmptyEntries))
        {
            string file = Path.GetFileName(entry);
            if (!file.Contains("malloc", StringComparison.Ordinal) || AllocatorPreload.LoadedLibrary(file) is not { } path)
                continue;
            return (file.StartsWith("libtcmalloc", StringComparison.Ordinal) ? "tcmalloc" : file.Split('.')[0], path);
        }
        return null;
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);

    /// <summary>Resident and peak resident size of this process in bytes (Linux), or -1.</summary>
    public static (long Rss, long PeakRss) ResidentMemory()
    {
        try
        {
            long rss = -1, peak = -1;
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:")) rss = ParseKb(line);
                else if (line.StartsWith("VmHWM:")) peak = ParseKb(line);
            }
            return (rss, peak);
        }
        catch (IOException) { return (-1, -1); }
        catch (UnauthorizedAccessException) { return (-1, -1); }

        static long ParseKb(string line) => long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0]) * 1024;
    }
}
