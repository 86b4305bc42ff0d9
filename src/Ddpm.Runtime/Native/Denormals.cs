using System.Runtime.InteropServices;

namespace Ddpm.Native;

/// <summary>
/// Flushes denormal floats to zero (x86 MXCSR: FTZ and DAZ), as torch.set_flush_denormal(True) does.
/// As training goes on, values far below float32's normal range (1.2e-38) turn up in the backward pass
/// and x86 computes with them many times slower. The setting is per thread and new threads inherit it,
/// so it must be made on the training thread before libtorch starts its worker threads.
/// </summary>
public static class Denormals
{
    private const int FenvSize = 32;           // sizeof(fenv_t) on x86-64 glibc
    private const int MxcsrOffset = 28;        // offsetof(fenv_t, __mxcsr)
    private const uint FlushToZero = 1u << 15; // FTZ: denormal results become 0
    private const uint DenormalsAreZero = 1u << 6; // DAZ: denormal inputs read as 0

    /// <summary>Set DDPM_FLUSH_DENORMALS=0 to keep denormals.</summary>
    public const string EnvironmentVariable = "DDPM_FLUSH_DENORMALS";

    /// <summary>Turns on FTZ and DAZ for this thread (and the threads it starts); true when they are on.</summary>
    public static bool Flush()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) == "0"
            || !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return false;
        try
        {
            var environment = new byte[FenvSize];
            if (fegetenv(environment) != 0) return false;
            uint mxcsr = BitConverter.ToUInt32(environment, MxcsrOffset) | FlushToZero | DenormalsAreZero;
            BitConverter.TryWriteBytes(environment.AsSpan(MxcsrOffset), mxcsr);
            return fesetenv(environment) == 0 && AreFlushed();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Whether FTZ and DAZ are on for this thread.</summary>
    public static bool AreFlushed()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return false;
        var environment = new byte[FenvSize];
        return fegetenv(environment) == 0
               && (BitConverter.ToUInt32(environment, MxcsrOffset) & (FlushToZero | DenormalsAreZero)) == (FlushToZero | DenormalsAreZero);
    }

    [DllImport("libm.so.6")]
    private static extern int fegetenv(byte[] environment);

    [DllImport("libm.so.6")]
    private static extern int fesetenv(byte[] environment);
}
