using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Ddpm.Native;

/// <summary>
/// Keeps libtorch's CPU convolutions from returning NaN.
/// <para>
/// libtorch 2.10 (TorchSharp 0.107) runs CPU convolutions through oneDNN, which reorders tensors into
/// channel blocks of 8 or 16 and pads the last block when the channel count is not a multiple of it (the
/// tutorial's U-Net has 28, 56 and 112 channels). The padding of those buffers is not always zeroed: it
/// holds whatever the allocator handed out, and since 0 * NaN = NaN, a NaN left there by an earlier tensor
/// turns real outputs into NaN. Measured on AMD EPYC (AVX-512) with oneDNN 3.7.1: a plain 3x3 conv2d of
/// 28 channels returned NaN in 1-59% of calls after the heap had held NaN, and the seed model's forward
/// pass in up to 60% of calls; training stopped with "the loss is NaN" at step 1 now and then.
/// </para>
/// <para>
/// Its AVX-512 kernels were also wrong on the same CPU beyond that: with every buffer zeroed, two identical
/// training steps of a small U-Net (8 and 16 channels) in one process gave gradient norms of 1.879 and 1.812,
/// and the loss differed from libtorch's own kernels by 3e-4 relative, while the AVX2 kernels matched libtorch's
/// own to every printed digit. So on an AMD CPU with AVX-512, <see cref="PrepareEnvironment"/> caps oneDNN at AVX2
/// (ONEDNN_MAX_CPU_ISA=AVX2) unless the user set ONEDNN_MAX_CPU_ISA; it runs when this assembly loads, before
/// oneDNN reads the variable. The cap cost 1.49x on a training step against the (wrong) AVX-512 kernels. Intel CPUs
/// keep AVX-512 (and AMX): oneDNN's home ground, where earlier runs of the same tests passed.
/// </para>
/// <para>
/// Even capped at AVX2 with zeroed buffers, oneDNN computed some convolutions wrong on that CPU (2026-12-02, found by
/// comparing with PyTorch): input channel counts of 4 mod 8 (12, 28, 84: the tutorial U-Net's first stage has 28) gave
/// max errors of 1.1-2.1 against float64, where 8, 16, 32, 56, 112 and 168 channels were right to 2e-5. So the default
/// is now <c>off</c>.
/// </para>
/// <para>
/// <see cref="Configure"/> applies what DDPM_ONEDNN chooses:
/// <c>auto</c> (the default) starts on libtorch's own im2col + BLAS kernels, which write every output element and agree with
/// float64 on every CPU checked, and lets <see cref="ConvolutionBackends.Choose"/> switch oneDNN on for a model when every
/// one of its convolution shapes passed the check of <see cref="KernelCheck"/> on this machine and oneDNN was the faster;
/// <c>off</c> keeps libtorch's own kernels whatever the check says; <c>zero</c> keeps oneDNN and makes libtorch's CPU
/// allocator zero every new buffer (c10's caffe2_cpu_allocator_do_zero_fill), so the padding reads 0: one memset per
/// allocation, measured 5% on a training step and 16% on a sampling step of the seed model. NNPACK stays off except under
/// <c>unsafe</c> (setUserEnabledNNPACK): with oneDNN off, libtorch tries NNPACK for every convolution, and where NNPACK
/// cannot start (as on that EPYC) it prints "Could not initialize NNPACK! Reason: Unsupported hardware" each time (116,000
/// lines in a two-epoch run's log) before falling back; where it can start, it would put a kernel under the model that was
/// never checked against float64. <c>unsafe</c> keeps libtorch as shipped (no ISA cap, no oneMKL dispatch either).
/// </para>
/// </summary>
public static class OneDnn
{
    /// <summary>The environment variable that chooses the remedy: <c>auto</c> (or unset), <c>off</c>, <c>zero</c> or <c>unsafe</c>.</summary>
    public const string EnvironmentVariable = "DDPM_ONEDNN";

    /// <summary>The remedies <see cref="Configure"/> can apply, as DDPM_ONEDNN names them.</summary>
    public enum Mode
    {
        /// <summary><c>zero</c>: keep oneDNN and zero every new CPU buffer, so its padding reads 0 (faster, but wrong for some channel counts on AMD EPYC).</summary>
        ZeroFill,
        /// <summary><c>off</c>: no oneDNN for convolutions, whatever the check says; libtorch's own kernels.</summary>
        Off,
        /// <summary><c>unsafe</c>: libtorch as shipped, with no ISA cap; convolutions may return NaN.</summary>
        AsShipped,
        /// <summary><c>auto</c> (the default): libtorch's own kernels, and oneDNN for a model whose every convolution shape passed the check here and ran faster on it (<see cref="ConvolutionBackends"/>).</summary>
        Auto,
    }

    /// <summary>The value <see cref="PrepareEnvironment"/> gives ONEDNN_MAX_CPU_ISA on CPUs with AVX-512.</summary>
    public const string CappedIsa = "AVX2";

    private static readonly object Gate = new();
    private static string? status;
    private static string isaNote = "";

    /// <summary>
    /// Under DDPM_ONEDNN=zero, caps oneDNN at AVX2 on AMD CPUs with AVX-512 (see the class remarks), unless the user set
    /// ONEDNN_MAX_CPU_ISA. Runs as this assembly's module initializer, so before libtorch is loaded by anything that
    /// uses Ddpm; it only sets an environment variable, in the native environment (which oneDNN reads) and in .NET's.
    /// </summary>
#pragma warning disable CA2255 // deliberate: the variable must be set before anything that uses Ddpm loads libtorch
    [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
    public static void PrepareEnvironment()
    {
        ThreadPolicy.PrepareEnvironment(); // libgomp too reads its variables when libtorch loads it
        const string variable = "ONEDNN_MAX_CPU_ISA";
        try
        {
            // Under auto the kernel check runs oneDNN at its full ISA and keeps it only where it agrees with float64.
            if (ParseMode(Environment.GetEnvironmentVariable(EnvironmentVariable)) != Mode.ZeroFill) return;
        }
        catch (ArgumentException) { return; } // Configure reports the bad value
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } chosen)
        {
            isaNote = chosen == CappedIsa ? $", ISA capped at {CappedIsa}" : $", ISA {chosen} ({variable})";
            return;
        }
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported || !IsAmd() || !OperatingSystem.IsLinux()) return;
        try
        {
            if (setenv(variable, CappedIsa, 0) != 0) return;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return; }
        Environment.SetEnvironmentVariable(variable, CappedIsa);
        isaNote = $", ISA capped at {CappedIsa}";
    }

    /// <summary>What <see cref="Configure"/> did (configuring first if nothing has), for logs and bench reports.</summary>
    public static string Status
    {
        get
        {
            Configure();
            return status!;
        }
    }

    /// <summary>Reads DDPM_ONEDNN: unset or <c>auto</c>, <c>off</c>, <c>zero</c>, <c>unsafe</c>.</summary>
    public static Mode ParseMode(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => Mode.Auto,
        "off" => Mode.Off,
        "zero" => Mode.ZeroFill,
        "unsafe" => Mode.AsShipped,
        string other => throw new ArgumentException($"{EnvironmentVariable}={other} is not one of auto, off, zero or unsafe."),
    };

    /// <summary>The mode this process runs under (<see cref="Mode.Auto"/> when DDPM_ONEDNN holds a value it does not know, which <see cref="Status"/> reports).</summary>
    internal static Mode CurrentMode
    {
        get
        {
            try { return ParseMode(Environment.GetEnvironmentVariable(EnvironmentVariable)); }
            catch (ArgumentException) { return Mode.AsShipped; }
        }
    }

    /// <summary>
    /// Applies the remedy once per process; later calls return at once. Every block that convolves calls it from its
    /// static constructor, so a model is safe whoever builds it. Never throws: if libtorch's symbols cannot be found
    /// (another libtorch build, not Linux), it records why and leaves libtorch as it is.
    /// </summary>
    public static void Configure()
    {
        if (status is not null) return;
        lock (Gate)
        {
            if (status is not null) return;
            Mode mode;
            try { mode = ParseMode(Environment.GetEnvironmentVariable(EnvironmentVariable)); }
            catch (ArgumentException e) { status = $"oneDNN as shipped ({e.Message})"; return; }
            status = Apply(mode);
        }
    }

    private static string Apply(Mode mode)
    {
        if (mode == Mode.AsShipped)
            return "oneDNN as shipped (DDPM_ONEDNN=unsafe: convolutions may return NaN)";
        if (!OperatingSystem.IsLinux())
            return "oneDNN as shipped (the remedy is implemented for Linux only)";
        _ = get_num_threads(); // loads libtorch if nothing has yet
        try
        {
            // Before any matrix product: oneMKL chooses its code path once, at its first call.
            string gemm = MklDispatch.Apply(LoadedPath("libtorch_cpu.so"));
            var switches = Switches();
            switches.SetNnpack(switches.Context, false);
            if (mode is Mode.Off or Mode.Auto)
            {
                switches.SetMkldnn(switches.Context, false);
                return mode == Mode.Off
                    ? $"oneDNN and NNPACK off (libtorch's own convolutions){gemm}"
                    : $"libtorch's own convolutions until a model's shapes are checked{gemm}";
            }
            SetZeroFill(true);
            return $"oneDNN on{isaNote}, new CPU buffers zeroed{gemm}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or FileNotFoundException or BadImageFormatException)
        {
            return $"oneDNN as shipped (could not reach libtorch's switch: {e.Message})";
        }
    }

    /// <summary>
    /// Switches libtorch's convolutions to oneDNN (with zeroed new buffers, so its channel-block padding reads 0) or to its
    /// own kernels; returns the previous setting, or null where libtorch's switch cannot be reached (not Linux, another build).
    /// The switch is process-wide and read when a convolution runs, forward and backward alike.
    /// </summary>
    internal static bool? SetConvolutionBackend(bool oneDnn)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            var switches = Switches();
            bool previous = switches.Mkldnn(switches.Context);
            SetZeroFill(oneDnn); // the padding of oneDNN's channel blocks must read 0; libtorch's own kernels need no memset
            switches.SetMkldnn(switches.Context, oneDnn);
            return previous;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or FileNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }

    private static void SetZeroFill(bool on)
    {
        var c10 = NativeLibrary.Load(LoadedPath("libc10.so"));
        Marshal.WriteByte(NativeLibrary.GetExport(c10, "FLAGS_caffe2_cpu_allocator_do_zero_fill"), on ? (byte)1 : (byte)0);
    }

    private sealed record LibtorchSwitches(IntPtr Context, SetUserEnabledFn SetMkldnn, SetUserEnabledFn SetNnpack, UserEnabledFn Mkldnn);

    private static LibtorchSwitches? switchesCache;

    /// <summary>libtorch's global context and its getters and setters of the convolution backends, looked up once.</summary>
    private static LibtorchSwitches Switches()
    {
        if (switchesCache is { } known) return known;
        var torchCpu = NativeLibrary.Load(LoadedPath("libtorch_cpu.so"));
        return switchesCache = new LibtorchSwitches(
            GlobalContext(torchCpu),
            Marshal.GetDelegateForFunctionPointer<SetUserEnabledFn>(NativeLibrary.GetExport(torchCpu, "_ZN2at7Context20setUserEnabledMkldnnEb")),
            Marshal.GetDelegateForFunctionPointer<SetUserEnabledFn>(NativeLibrary.GetExport(torchCpu, "_ZN2at7Context20setUserEnabledNNPACKEb")),
            Marshal.GetDelegateForFunctionPointer<UserEnabledFn>(NativeLibrary.GetExport(torchCpu, "_ZNK2at7Context17userEnabledMkldnnEv")));
    }

    /// <summary>libtorch's own switches for its oneDNN and NNPACK convolutions, read back (Linux only; null elsewhere).</summary>
    internal static (bool Mkldnn, bool Nnpack)? UserEnabledConvolutionBackends()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var torchCpu = NativeLibrary.Load(LoadedPath("libtorch_cpu.so"));
        var context = GlobalContext(torchCpu);
        var mkldnn = Marshal.GetDelegateForFunctionPointer<UserEnabledFn>(NativeLibrary.GetExport(torchCpu, "_ZNK2at7Context17userEnabledMkldnnEv"));
        var nnpack = Marshal.GetDelegateForFunctionPointer<UserEnabledFn>(NativeLibrary.GetExport(torchCpu, "_ZNK2at7Context17userEnabledNNPACKEv"));
        return (mkldnn(context), nnpack(context));
    }

    /// <summary>at::globalContext(), the object that holds libtorch's switches.</summary>
    private static IntPtr GlobalContext(IntPtr torchCpu) =>
        Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(NativeLibrary.GetExport(torchCpu, "_ZN2at13globalContextEv"))();

    /// <summary>The path of a loaded libtorch library: TorchSharp loads them by full path from its runtimes folder.</summary>
    internal static string LoadedPath(string fileName) =>
        AllocatorPreload.LoadedLibrary(fileName) is { } path && Path.GetFileName(path) == fileName
            ? path
            : throw new FileNotFoundException($"{fileName} is not loaded in this process.");

    /// <summary>Whether the CPU's vendor (CPUID leaf 0) is "AuthenticAMD".</summary>
    public static bool IsAmd() => CpuInfo.Vendor() == "AuthenticAMD";

    [DllImport("libc", CharSet = CharSet.Ansi)]
    private static extern int setenv(string name, string value, int overwrite);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    // A C++ member function: `this` is the first argument in the x86-64 and AArch64 calling conventions.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void SetUserEnabledFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal delegate bool UserEnabledFn(IntPtr context);
}
