namespace Ddpm.Distributed;

/// <summary>
/// The ranks of an MPI job (MPI_COMM_WORLD) through Open MPI's libmpi: start the program with <c>mpirun -np N</c> and every
/// process joins. Ranks find each other through MPI alone; the transport (shared memory, TCP, InfiniBand) is Open MPI's choice.
/// </summary>
public sealed class MpiProcessGroup : IProcessGroup
{
    private readonly OpenMpi mpi;
    private readonly CollectiveWatchdog? watchdog;
    private volatile string? recoveryNote;
    private bool disposed;

    private MpiProcessGroup(OpenMpi mpi, TimeSpan watchdogLimit, Action<string>? onSilent)
    {
        this.mpi = mpi;
        bool watch = watchdogLimit > TimeSpan.Zero && onSilent is not null;
        mpi.Init(threads: watch);
        Rank = mpi.Rank;
        Size = mpi.Size;
        if (!watch || Size < 2) return;
        if (!mpi.ThreadsSupported)
        {
            WatchdogOff = $"{mpi.Name} does not grant MPI_THREAD_MULTIPLE, which the collective watchdog needs: a rank that hangs will not be detected.";
            return;
        }
        watchdog = new CollectiveWatchdog(Rank, Size, watchdogLimit, new MpiHeartbeats(mpi, Size), message =>
        {
            onSilent!(recoveryNote is { } note ? $"{message} {note}" : message);
            mpi.Abort(1);
        });
    }

    /// <summary>
    /// Environment variables that MPI launchers set in every process they start: Open MPI's mpirun, then PMI (MPICH, Slurm).
    /// </summary>
    public static readonly IReadOnlyList<string> LauncherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"];

    /// <summary>True when an MPI launcher (mpirun, srun) started this process.</summary>
    public static bool LaunchedByMpi() => LauncherVariables.Any(v => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(v)));

    /// <summary>Loads libmpi and joins the job (MPI_Init); a clear error when Open MPI is not installed.</summary>
    /// <param name="watchdog">
    /// How long a collective may wait on a rank that shows no sign of life (zero: forever). Then <paramref name="onSilent"/>
    /// is called with one message naming the silent ranks (and the <see cref="NoteRecovery"/> note) and the job ends
    /// (MPI_Abort, exit code 1). See <see cref="CollectiveWatchdog"/>.
    /// </param>
    /// <param name="onSilent">Reports the watchdog's message (null: no watchdog).</param>
    public static MpiProcessGroup Join(TimeSpan watchdog = default, Action<string>? onSilent = null) => new(OpenMpi.Load(), watchdog, onSilent);

    /// <summary>
    /// The group this process belongs to: the MPI job when an MPI launcher started it, otherwise <see cref="SingleProcess"/>
    /// (libmpi is then not loaded at all, so a machine without MPI trains as before). The watchdog as in <see cref="Join"/>.
    /// </summary>
    public static IProcessGroup FromEnvironment(TimeSpan watchdog = default, Action<string>? onSilent = null) =>
        LaunchedByMpi() ? Join(watchdog, onSilent) : SingleProcess.Instance;

    /// <summary>Why a watchdog that was asked for does not run (null: it runs, or none was asked for).</summary>
    public string? WatchdogOff { get; }

    /// <summary>The libmpi file in use.</summary>
    public string Library => mpi.Name;
    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <inheritdoc/>
    public void AllReduceSum(Span<float> buffer)
    {
        using var _ = Watch();
        mpi.AllreduceSum(buffer);
    }

    /// <inheritdoc/>
    public void Broadcast(Span<float> buffer)
    {
        using var _ = Watch();
        mpi.Broadcast(buffer, root: 0);
    }

    /// <inheritdoc/>
    public void Broadcast(Span<byte> buffer)
    {
        using var _ = Watch();
        mpi.Broadcast(buffer, root: 0);
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        using var _ = Watch();
        mpi.Barrier();
    }

    /// <inheritdoc/>
    public void Abort(int exitCode) => mpi.Abort(exitCode);
    /// <inheritdoc/>
    public void Describe(string collectives) => watchdog?.Describe(collectives);
    /// <inheritdoc/>
    public void NoteRecovery(string note) => recoveryNote = note;

    private CollectiveWatchdog.Scope Watch() => watchdog?.Enter() ?? default;

    /// <summary>MPI_Finalize (once; every rank must reach it, so call it only after the last collective).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        watchdog?.Dispose();
        if (!mpi.IsFinalized) mpi.Close();
    }
}
