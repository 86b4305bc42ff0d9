using System.Runtime.InteropServices;

namespace Ddpm.Distributed;

/// <summary>
/// The few MPI C calls data-parallel training needs, bound to Open MPI's libmpi at run time: init/finalize, rank and size,
/// in-place allreduce (sum) and broadcast of float or byte buffers, barrier and abort.
/// </summary>
/// <remarks>
/// Two Open MPI facts shape this file. Its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported
/// globals (<c>ompi_mpi_comm_world</c>, ...), not MPICH's integer constants, so they are looked up as symbols. And libmpi opens
/// its plugins (mca_*.so) which resolve symbols against it: it must be loaded with RTLD_GLOBAL, which .NET's own loader does not
/// do, so the library is opened here with dlopen. MPI.NET 1.4.0 is bound to MS-MPI (msmpi.dll, integer handles) and cannot
/// talk to Open MPI. Errors use MPI's default handler (MPI_ERRORS_ARE_FATAL): a failed call aborts the whole job.
/// </remarks>
internal sealed class OpenMpi
{
    private const int RtldNow = 2, RtldGlobal = 0x100;
    // mpi.h: #define MPI_IN_PLACE ((void *) 1)
    private static readonly IntPtr InPlace = 1;

    private delegate int InitFn(IntPtr argc, IntPtr argv);
    private delegate int FlagFn(out int flag);
    private delegate int FinalizeFn();
    private delegate int CommIntFn(IntPtr comm, out int value);
    private delegate int AllreduceFn(IntPtr sendBuffer, ref byte buffer, int count, IntPtr datatype, IntPtr op, IntPtr comm);
    private delegate int BcastFn(ref byte buffer, int count, IntPtr datatype, int root, IntPtr comm);
    private delegate int CommFn(IntPtr comm);
    private delegate int AbortFn(IntPtr comm, int code);

    private readonly InitFn init;
    private readonly FlagFn initialized, finalized;
    private readonly FinalizeFn finalize;
    private readonly CommIntFn rank, size;
    private readonly AllreduceFn allreduce;
    private readonly BcastFn bcast;
    private readonly CommFn barrier;
    private readonly AbortFn abort;

    /// <summary>The library names tried in order: the runtime package's soname, then the -dev package's link.</summary>
    public static readonly string[] LibraryNames = ["libmpi.so.40", "libmpi.so"];

    private OpenMpi(IntPtr library, string name)
    {
        Name = name;
        T Function<T>(string symbol) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(Symbol(library, symbol));
        init = Function<InitFn>("MPI_Init");
        initialized = Function<FlagFn>("MPI_Initialized");
        finalized = Function<FlagFn>("MPI_Finalized");
        finalize = Function<FinalizeFn>("MPI_Finalize");
        rank = Function<CommIntFn>("MPI_Comm_rank");
        size = Function<CommIntFn>("MPI_Comm_size");
        allreduce = Function<AllreduceFn>("MPI_Allreduce");
        bcast = Function<BcastFn>("MPI_Bcast");
        barrier = Function<CommFn>("MPI_Barrier");
        abort = Function<AbortFn>("MPI_Abort");
        World = Symbol(library, "ompi_mpi_comm_world");
        Float = Symbol(library, "ompi_mpi_float");
        Byte = Symbol(library, "ompi_mpi_byte");
        Sum = Symbol(library, "ompi_mpi_op_sum");
    }

    /// <summary>The library file that was loaded.</summary>
    public string Name { get; }
    public IntPtr World { get; }
    public IntPtr Float { get; }
    public IntPtr Byte { get; }
    public IntPtr Sum { get; }

    /// <summary>Opens Open MPI's libmpi with RTLD_GLOBAL; a clear error when it is missing or is not Open MPI.</summary>
    public static OpenMpi Load()
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("Distributed training binds Open MPI's libmpi on Linux only.");
        var errors = new List<string>();
        foreach (string name in LibraryNames)
        {
            IntPtr library = dlopen(name, RtldNow | RtldGlobal);
            if (library == IntPtr.Zero)
            {
                errors.Add(Marshal.PtrToStringUTF8(dlerror()) ?? name);
                continue;
            }
            if (!NativeLibrary.TryGetExport(library, "ompi_mpi_comm_world", out _))
                throw new DllNotFoundException($"{name} is not Open MPI's libmpi (it exports no ompi_mpi_comm_world); distributed training needs Open MPI.");
            return new OpenMpi(library, name);
        }
        throw new DllNotFoundException("Open MPI's libmpi could not be loaded (on Debian/Ubuntu: apt-get install openmpi-bin): " + string.Join("; ", errors));
    }

    public void Init()
    {
        Check(initialized(out int done), "MPI_Initialized");
        if (done == 0) Check(init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
    }

    public bool IsFinalized => finalized(out int done) == 0 && done != 0;

    public void Close() => Check(finalize(), "MPI_Finalize");

    public int Rank
    {
        get { Check(rank(World, out int value), "MPI_Comm_rank"); return value; }
    }

    public int Size
    {
        get { Check(size(World, out int value), "MPI_Comm_size"); return value; }
    }

    /// <summary>Sums <paramref name="buffer"/> over all ranks, in place.</summary>
    public void AllreduceSum(Span<float> buffer)
    {
        if (buffer.IsEmpty) return;
        Check(allreduce(InPlace, ref MemoryMarshal.AsBytes(buffer)[0], buffer.Length, Float, Sum, World), "MPI_Allreduce");
    }

    public void Broadcast(Span<float> buffer, int root)
    {
        if (buffer.IsEmpty) return;
        Check(bcast(ref MemoryMarshal.AsBytes(buffer)[0], buffer.Length, Float, root, World), "MPI_Bcast");
    }

    public void Broadcast(Span<byte> buffer, int root)
    {
        if (buffer.IsEmpty) return;
        Check(bcast(ref buffer[0], buffer.Length, Byte, root, World), "MPI_Bcast");
    }

    public void Barrier() => Check(barrier(World), "MPI_Barrier");

    public void Abort(int code) => abort(World, code);

    private static void Check(int result, string call)
    {
        // With MPI_ERRORS_ARE_FATAL a failing call aborts before returning; this is for a handler set by the user's MPI config.
        if (result != 0) throw new InvalidOperationException($"{call} failed with MPI error code {result}.");
    }

    private static IntPtr Symbol(IntPtr library, string name) =>
        NativeLibrary.TryGetExport(library, name, out IntPtr address)
            ? address
            : throw new EntryPointNotFoundException($"libmpi exports no '{name}'; distributed training needs Open MPI 4 or later.");

    [DllImport("libc.so.6", EntryPoint = "dlopen")]
    private static extern IntPtr dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc.so.6", EntryPoint = "dlerror")]
    private static extern IntPtr dlerror();
}
