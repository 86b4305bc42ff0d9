using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;

namespace Ddpm.Native;

/// <summary>
/// Lets libtorch's oneMKL use this CPU's vector units when the CPU is not Intel's.
/// <para>
/// libtorch's own convolutions are im2col + a GEMM from the oneMKL 2024.0 linked into libtorch_cpu. oneMKL picks its code path
/// once, at its first call, and on a CPU whose vendor is not "GenuineIntel" it takes its generic path (MKL_VERBOSE names an AMD
/// EPYC with AVX-512 "Intel(R) Architecture processors"; MKL_ENABLE_INSTRUCTIONS does not change it). The vendor test is one
/// exported function, <c>mkl_serv_intel_cpu_true</c>; making it answer 1 before the first call lets oneMKL dispatch on the
/// instruction sets the CPU reports, as it does on Intel's. Measured on AMD EPYC (AVX-512-BF16, 2 cores): a 2048² sgemm
/// 100 -> 79 ms, a training step of the seed model 2,845 -> 2,357 ms, a sampling step 420-512 -> 352-372 ms
/// (docs/performance.md).
/// </para>
/// <para>
/// The products are checked against float64 (<see cref="KernelCheck.GemmError"/>) the first time on a machine and the result
/// is kept in the kernel cache. oneMKL cannot be switched back once it has chosen, so a failed check ends the process with
/// one line after recording the failure; the next start then keeps oneMKL's generic path. DDPM_MKL_DISPATCH=off keeps oneMKL
/// as shipped.
/// </para>
/// </summary>
internal static class MklDispatch
{
    /// <summary>The environment variable: <c>auto</c> (or unset) or <c>off</c>.</summary>
    public const string EnvironmentVariable = "DDPM_MKL_DISPATCH";

    /// <summary>oneMKL's vendor test, exported by libtorch_cpu.</summary>
    public const string VendorFunction = "mkl_serv_intel_cpu_true";

    /// <summary><c>mov eax, 1; ret</c>: the vendor test answers "Intel".</summary>
    private static readonly byte[] ReturnOne = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];

    /// <summary>
    /// Applies the dispatch before oneMKL's first call; returns what it did as a clause for the status line ("" when there is
    /// nothing to do: an Intel CPU, not x86-64). Never throws; a failed first check ends the process (see the class remarks).
    /// </summary>
    public static string Apply(string torchCpuPath)
    {
        string? value = Environment.GetEnvironmentVariable(EnvironmentVariable)?.Trim().ToLowerInvariant();
        if (value == "off") return $"; oneMKL as shipped ({EnvironmentVariable}=off)";
        if (value is not (null or "" or "auto")) return $"; oneMKL as shipped ({EnvironmentVariable}={value} is not auto or off)";
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64 || !Avx2.IsSupported || IsIntel()) return "";

        var cache = KernelCache.Open(get_num_threads());
        if (cache.MklVendorDispatch == false)
            return $"; oneMKL's generic code path (its full path failed the float64 check here: {cache.Path})";
        IntPtr function;
        try { function = NativeLibrary.GetExport(NativeLibrary.Load(torchCpuPath), VendorFunction); }
        catch (EntryPointNotFoundException) { return $"; oneMKL's generic code path ({VendorFunction} not found in this libtorch)"; }
        if (!Write(function, ReturnOne))
            return $"; oneMKL's generic code path (could not patch {VendorFunction}: errno {Marshal.GetLastPInvokeError()})";

        string checkedNow = "";
        if (cache.MklVendorDispatch is null)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            double error = KernelCheck.GemmError();
            checkedNow = string.Create(System.Globalization.CultureInfo.InvariantCulture, $" in {watch.Elapsed.TotalSeconds:F1} s");
            bool passed = error < KernelCheck.Float32Tolerance;
            cache.MklVendorDispatch = passed;
            cache.Save();
            if (!passed)
            {
                Console.Error.WriteLine(
                    $"ddpm: oneMKL's full code path gave matrix products wrong by {error:G3} (relative to float64) on this {CpuInfo.Name()}; " +
                    $"recorded in {cache.Path}, so the next start keeps oneMKL's generic path. Run the command again.");
                Environment.Exit(1);
            }
        }
        return $"; oneMKL's full code path (its CPU vendor test answered as on Intel; checked against float64{checkedNow})";
    }

    /// <summary>Whether the CPU's vendor (CPUID leaf 0) is "GenuineIntel".</summary>
    public static bool IsIntel() => CpuInfo.Vendor() == "GenuineIntel";

    /// <summary>Overwrites code: the pages become writable for the write and read-execute again after it.</summary>
    private static bool Write(IntPtr address, byte[] code)
    {
        const int Read = 1, Write = 2, Execute = 4;
        var page = new IntPtr(address.ToInt64() & ~4095L);
        nuint length = (nuint)(address.ToInt64() - page.ToInt64() + code.Length);
        if (mprotect(page, length, Read | Write | Execute) != 0) return false;
        Marshal.Copy(code, 0, address, code.Length);
        // Taking write access back is hygiene: the patch is in place and works either way.
        _ = mprotect(page, length, Read | Execute);
        return true;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int mprotect(IntPtr address, nuint length, int protection);
}
