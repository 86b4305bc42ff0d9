namespace Ddpm.Distributed;

/// <summary>
/// The ranks of an MPI job (MPI_COMM_WORLD) through Open MPI's libmpi: start the program with <c>mpirun -np N</c> and every
/// process joins. Ranks find each other through MPI alone; the transport (shared memory, TCP, InfiniBand) is Open MPI's choice.
/// </summary>
public sealed class MpiProcessGroup : IProcessGroup
{
    private readonly OpenMpi mpi;
    private bool disposed;

    private MpiProcessGroup(OpenMpi mpi)
    {
        this.mpi = mpi;
        mpi.Init();
        Rank = mpi.Rank;
        Size = mpi.Size;
    }

    /// <summary>
    /// Environment variables that MPI launchers set in every process they start: Open MPI's mpirun, then PMI (MPICH, Slurm).
    /// </summary>
    public static readonly IReadOnlyList<string> LauncherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"];

    /// <summary>True when an MPI launcher (mpirun, srun) started this process.</summary>
    public static bool LaunchedByMpi() => LauncherVariables.Any(v => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(v)));

    /// <summary>Loads libmpi and joins the job (MPI_Init); a clear error when Open MPI is not installed.</summary>
    public static MpiProcessGroup Join() => new(OpenMpi.Load());

    /// <summary>
    /// The group this process belongs to: the MPI job when an MPI launcher started it, otherwise <see cref="SingleProcess"/>
    /// (libmpi is then not loaded at all, so a machine without MPI trains as before).
    /// </summary>
    public static IProcessGroup FromEnvironment() => LaunchedByMpi() ? Join() : SingleProcess.Instance;

    /// <summary>The libmpi file in use.</summary>
    public string Library => mpi.Name;
    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <inheritdoc/>
    public void AllReduceSum(Span<float> buffer) => mpi.AllreduceSum(buffer);
    /// <inheritdoc/>
    public void Broadcast(Span<float> buffer) => mpi.Broadcast(buffer, root: 0);
    /// <inheritdoc/>
    public void Broadcast(Span<byte> buffer) => mpi.Broadcast(buffer, root: 0);
    /// <inheritdoc/>
    public void Barrier() => mpi.Barrier();
    /// <inheritdoc/>
    public void Abort(int exitCode) => mpi.Abort(exitCode);

    /// <summary>MPI_Finalize (once; every rank must reach it, so call it only after the last collective).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (!mpi.IsFinalized) mpi.Close();
    }
}
