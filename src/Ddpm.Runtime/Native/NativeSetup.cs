namespace Ddpm.Native;

/// <summary>
/// The one native set-up of a process that runs libtorch through Ddpm: glibc malloc tuned unless an allocator is preloaded
/// (<see cref="Allocator"/>), denormals flushed on the calling thread before libtorch starts its workers
/// (<see cref="Denormals"/>), and libtorch's convolution and GEMM switches (<see cref="OneDnn"/>, <see cref="MklDispatch"/>).
/// Called by the facade (<see cref="Ddpm.DiffusionModel"/>), by generated models' constructors and by the CLI, the first
/// time each needs libtorch; later calls return at once. Never throws: what it could not apply is said once on stderr.
/// </summary>
internal static class NativeSetup
{
    private static readonly object Gate = new();
    private static volatile bool configured;

    /// <summary>Configures everything once per process (thread-safe).</summary>
    public static void EnsureConfigured()
    {
        if (configured) return;
        lock (Gate)
        {
            if (configured) return;
            Allocator.Tune();
            Denormals.Flush();
            OneDnn.Configure();
            configured = true;
            foreach (string problem in Problems(OneDnn.Status, Allocator.Status, AllocatorAdvice()))
                Console.Error.WriteLine($"ddpm: {problem}");
        }
    }

    /// <summary>
    /// The remedies that could not be applied, as the lines to print: a convolution switch or oneMKL vendor test that
    /// could not be reached (this libtorch build lacks the symbols), and a bundled tcmalloc that is not preloaded.
    /// </summary>
    internal static IReadOnlyList<string> Problems(string oneDnnStatus, string allocatorStatus, string? allocatorAdvice)
    {
        var problems = new List<string>();
        const string unreachable = "could not reach libtorch's switch";
        if (oneDnnStatus.Contains(unreachable, StringComparison.Ordinal))
            problems.Add($"convolutions run as this libtorch ships them: {oneDnnStatus[oneDnnStatus.IndexOf(unreachable, StringComparison.Ordinal)..].TrimEnd(')')} " +
                         $"(set {OneDnn.EnvironmentVariable}=off if convolutions return NaN).");
        foreach (string failure in new[] { "not found in this libtorch", "could not patch" })
            if (oneDnnStatus.IndexOf(failure, StringComparison.Ordinal) is int at and >= 0)
            {
                int start = oneDnnStatus.LastIndexOf("; oneMKL", at, StringComparison.Ordinal);
                problems.Add($"matrix products use {oneDnnStatus[(start + 2)..].TrimEnd(')')}); they run correctly, but slower on this CPU.");
            }
        if (allocatorAdvice is not null && !allocatorStatus.Contains("preloaded", StringComparison.Ordinal))
            problems.Add(allocatorAdvice);
        return problems;
    }

    /// <summary>
    /// On Linux, when tcmalloc is there to preload but this process did not start with it (a user's program that did not
    /// call <see cref="AllocatorPreload.RestartIfNeeded"/>): how to get it. Null when there is nothing to get or the user chose.
    /// </summary>
    private static string? AllocatorAdvice()
    {
        if (!OperatingSystem.IsLinux()) return null;
        AllocatorPreload.Choice choice;
        try { choice = AllocatorPreload.ParseChoice(Environment.GetEnvironmentVariable(Allocator.EnvironmentVariable)).Choice; }
        catch (ArgumentException) { return null; }
        if (choice is not AllocatorPreload.Choice.Auto) return null;
        string? library = AllocatorPreload.TcmallocCandidates(AppContext.BaseDirectory).FirstOrDefault(File.Exists);
        return library is null ? null
            : $"native memory: glibc malloc (tuned), not the tcmalloc at {library}; for memory that stays flat over long runs start the " +
              $"program with LD_PRELOAD={library}, or call AllocatorPreload.RestartIfNeeded() first in Main ({Allocator.EnvironmentVariable}=glibc silences this).";
    }
}
