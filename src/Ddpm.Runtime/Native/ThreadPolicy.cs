using System.Globalization;
using System.Runtime.InteropServices;

namespace Ddpm.Native;

/// <summary>
/// How many OpenMP threads libtorch starts, set in the environment before libtorch (and its libgomp, which reads these
/// variables once, when it loads) is loaded.
/// <para>
/// The wait policy is left to libgomp (or the user's OMP_WAIT_POLICY): measured on AMD EPYC (2 cores), PASSIVE let two equal
/// `ddpm bench` at once keep 44% of their solo training speed instead of 34%, but alone it made a training step 15% slower in
/// both of two interleaved rounds (docs/performance.md, "Two jobs on one machine"), so it is not the default.
/// </para>
/// <para>
/// Threads under MPI: every rank of `mpirun -np N` on one node would otherwise start one thread per core, N times over; the
/// ranks on a node (OMPI_COMM_WORLD_LOCAL_SIZE) split the cores between them instead.
/// </para>
/// A variable the user set is never changed.
/// </summary>
internal static class ThreadPolicy
{
    /// <summary>
    /// The variables to set, given the current ones: OMP_NUM_THREADS under an MPI launcher that puts more than one rank on
    /// this node, when unset (cores / local ranks, at least 1).
    /// </summary>
    public static IReadOnlyDictionary<string, string> Settings(Func<string, string?> variable, int cores)
    {
        var settings = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(variable("OMP_NUM_THREADS"))
            && int.TryParse(variable("OMPI_COMM_WORLD_LOCAL_SIZE") ?? variable("MPI_LOCALNRANKS"), NumberStyles.None, CultureInfo.InvariantCulture, out int localRanks)
            && localRanks > 1)
            settings["OMP_NUM_THREADS"] = Math.Max(1, cores / localRanks).ToString(CultureInfo.InvariantCulture);
        return settings;
    }

    /// <summary>Applies <see cref="Settings"/> to this process's native and .NET environments; called before libtorch loads.</summary>
    public static void PrepareEnvironment()
    {
        if (!OperatingSystem.IsLinux()) return;
        foreach (var (name, value) in Settings(Environment.GetEnvironmentVariable, Environment.ProcessorCount))
        {
            try
            {
                if (setenv(name, value, 0) != 0) continue;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return; }
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    [DllImport("libc", CharSet = CharSet.Ansi)]
    private static extern int setenv(string name, string value, int overwrite);
}
