using System.Runtime.InteropServices;

namespace Ddpm.Distributed;

/// <summary>
/// The few MPI C calls data-parallel training needs, bound to Open MPI's libmpi at run time: init/finalize, rank and size,
/// in-place allreduce (sum) and broadcast of float or byte buffers, barrier and abort, and the non-blocking point-to-point
/// messages of the collective watchdog's heartbeats (<see cref="MpiHeartbeats"/>).
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

    // mpi.h: MPI_THREAD_MULTIPLE is 3 in Open MPI's enum; MPI_STATUS_IGNORE is a null pointer.
    private const int ThreadMultiple = 3;
    private static readonly IntPtr StatusIgnore = IntPtr.Zero;

    private delegate int InitFn(IntPtr argc, IntPtr argv);
    private delegate int InitThreadFn(IntPtr argc, IntPtr argv, int required, out int provided);
    private delegate int QueryThreadFn(out int provided);
    private delegate int IsendFn(IntPtr buffer, int count, IntPtr datatype, int destination, int tag, IntPtr comm, out IntPtr request);
    private delegate int TestFn(ref IntPtr request, out int flag, IntPtr status);
    private delegate int RequestFreeFn(ref IntPtr request);
    private delegate int IprobeFn(int source, int tag, IntPtr comm, out int flag, IntPtr status);
    private delegate int RecvFn(IntPtr buffer, int count, IntPtr datatype, int source, int tag, IntPtr comm, IntPtr status);
    private delegate int FlagFn(out int flag);
    private delegate int FinalizeFn();
    private delegate int CommIntFn(IntPtr comm, out int value);
    private delegate int AllreduceFn(IntPtr sendBuffer, ref byte buffer, int count, IntPtr datatype, IntPtr op, IntPtr comm);
    private delegate int BcastFn(ref byte buffer, int count, IntPtr datatype, int root, IntPtr comm);
    private delegate int CommFn(IntPtr comm);
    private delegate int AbortFn(IntPtr comm, int code);

    private readonly InitFn init;
    private readonly InitThreadFn initThread;
    private readonly QueryThreadFn queryThread;
    private readonly IsendFn isend;
    private readonly TestFn test;
    private readonly RequestFreeFn requestFree;
    private readonly IprobeFn iprobe;
    private readonly RecvFn recv;
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
        initThread = Function<InitThreadFn>("MPI_Init_thread");
        queryThread = Function<QueryThreadFn>("MPI_Query_thread");
        isend = Function<IsendFn>("MPI_Isend");
        test = Function<TestFn>("MPI_Test");
        requestFree = Function<RequestFreeFn>("MPI_Request_free");
        iprobe = Function<IprobeFn>("MPI_Iprobe");
        recv = Function<RecvFn>("MPI_Recv");
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

    /// <summary>MPI_Init, or MPI_Init_thread asking for MPI_THREAD_MULTIPLE (the watchdog's thread calls MPI while the main thread waits in a collective).</summary>
    public void Init(bool threads)
    {
        Check(initialized(out int done), "MPI_Initialized");
        if (done != 0) return;
        if (threads) Check(initThread(IntPtr.Zero, IntPtr.Zero, ThreadMultiple, out _), "MPI_Init_thread");
        else Check(init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
    }

    /// <summary>Whether any thread may call MPI at any time (MPI_THREAD_MULTIPLE was granted).</summary>
    public bool ThreadsSupported => queryThread(out int provided) == 0 && provided >= ThreadMultiple;

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

    /// <summary>Starts sending <paramref name="count"/> bytes at <paramref name="buffer"/> (which must stay valid until the request completes).</summary>
    public IntPtr Isend(IntPtr buffer, int count, int destination, int tag)
    {
        Check(isend(buffer, count, Byte, destination, tag, World, out IntPtr request), "MPI_Isend");
        return request;
    }

    /// <summary>Whether the request has completed (it is then freed).</summary>
    public bool Test(ref IntPtr request)
    {
        Check(test(ref request, out int flag, StatusIgnore), "MPI_Test");
        return flag != 0;
    }

    /// <summary>Lets a send request complete on its own.</summary>
    public void Free(ref IntPtr request) => Check(requestFree(ref request), "MPI_Request_free");

    /// <summary>Whether a message from <paramref name="source"/> with <paramref name="tag"/> is waiting.</summary>
    public bool Probe(int source, int tag)
    {
        Check(iprobe(source, tag, World, out int flag, StatusIgnore), "MPI_Iprobe");
        return flag != 0;
    }

    /// <summary>Receives <paramref name="count"/> bytes from <paramref name="source"/> into <paramref name="buffer"/>.</summary>
    public void Receive(IntPtr buffer, int count, int source, int tag) =>
        Check(recv(buffer, count, Byte, source, tag, World, StatusIgnore), "MPI_Recv");

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

/// <summary>
/// Heartbeats over MPI point-to-point messages (8 bytes, one tag of their own on MPI_COMM_WORLD; the collectives use
/// their own internal tags, so the two never match each other).
/// </summary>
internal sealed class MpiHeartbeats : IHeartbeatChannel
{
    private const int Tag = 0xDD9;
    private readonly OpenMpi mpi;
    private readonly IntPtr outgoing, incoming; // native: MPI reads a send buffer until the send completes
    private readonly IntPtr[] requests;
    private readonly bool[] inFlight;

    public MpiHeartbeats(OpenMpi mpi, int size)
    {
        this.mpi = mpi;
        outgoing = Marshal.AllocHGlobal(sizeof(long) * size);
        incoming = Marshal.AllocHGlobal(sizeof(long));
        requests = new IntPtr[size];
        inFlight = new bool[size];
    }

    public bool Send(int peer, long value)
    {
        if (inFlight[peer] && !mpi.Test(ref requests[peer])) return false; // a stopped peer: do not pile up beats
        IntPtr slot = outgoing + sizeof(long) * peer;
        Marshal.WriteInt64(slot, value);
        requests[peer] = mpi.Isend(slot, sizeof(long), peer, Tag);
        inFlight[peer] = true;
        return true;
    }

    public bool TryReceive(int peer, out long value)
    {
        value = 0;
        bool any = false;
        while (mpi.Probe(peer, Tag))
        {
            mpi.Receive(incoming, sizeof(long), peer, Tag);
            value = Marshal.ReadInt64(incoming);
            any = true;
        }
        return any;
    }

    public void Close()
    {
        var deadline = DateTime.UtcNow.AddSeconds(1);
        bool kept = false;
        for (int peer = 0; peer < requests.Length; peer++)
        {
            while (inFlight[peer] && !mpi.Test(ref requests[peer]))
            {
                if (DateTime.UtcNow < deadline) { Thread.Sleep(1); continue; }
                mpi.Free(ref requests[peer]); // a peer that never took it (stopped): MPI may still read the buffer, so it is kept
                kept = true;
                break;
            }
            inFlight[peer] = false;
        }
        Marshal.FreeHGlobal(incoming);
        if (!kept) Marshal.FreeHGlobal(outgoing);
    }
}
