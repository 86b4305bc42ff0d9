using System.Runtime.InteropServices;

namespace Ddpm.Native;

/// <summary>
/// Tunes glibc's malloc for libtorch. libtorch's CPU tensors come from malloc, and by default glibc
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

    /// <summary>Set DDPM_MALLOC=default to leave glibc's allocator as it is.</summary>
    public const string EnvironmentVariable = "DDPM_MALLOC";

    /// <summary>What <see cref="Tune"/> did, for logs.</summary>
    public static string Status { get; private set; } = "default";

    /// <summary>Applies the tuning once, at start-up, on Linux with glibc; a no-op elsewhere or when switched off.</summary>
    public static string Tune(bool enabled = true)
    {
        if (!enabled || Environment.GetEnvironmentVariable(EnvironmentVariable) is "default" or "off")
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
            return Status = ok ? "glibc malloc tuned (no mmap, no trim, one arena)" : "default (mallopt refused)";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return Status = "default (no glibc mallopt, e.g. musl)";
        }
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
