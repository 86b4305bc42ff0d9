using System.Runtime.InteropServices;
using Ddpm.Native;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Native;

/// <summary>FTZ/DAZ: set on one thread, inherited by the threads it starts, seen by libtorch's kernels.</summary>
public class DenormalsTests
{
    private static void SkipUnlessApplies()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64,
                   "Ddpm flushes denormals on Linux x64 only");
        Skip.If(Environment.GetEnvironmentVariable(Denormals.EnvironmentVariable) == "0",
                $"{Denormals.EnvironmentVariable}=0 is set: denormals are kept");
    }

    /// <summary>Runs <paramref name="body"/> on a thread of its own, so no other test's thread changes mode.</summary>
    private static T OnOwnThread<T>(Func<T> body)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() => { try { result = body(); } catch (Exception e) { failure = e; } });
        thread.Start();
        thread.Join();
        if (failure is not null) throw new AggregateException(failure);
        return result;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static float Product(float a, float b) => a * b; // not inlined, so never constant-folded at JIT time

    [SkippableFact]
    public void Flushing_turns_denormal_results_into_zero_here_and_in_threads_started_later()
    {
        SkipUnlessApplies();
        var (before, flushed, after, child, childProduct) = OnOwnThread(() =>
        {
            float denormal = Product(1e-30f, 1e-10f);           // 1e-40 is below float32's normal range
            bool on = Denormals.Flush();
            float zero = Product(1e-30f, 1e-10f);
            (bool Flushed, float Product) inChild = OnOwnThread(() => (Denormals.AreFlushed(), Product(1e-30f, 1e-10f)));
            return (denormal, on, zero, inChild.Flushed, inChild.Product);
        });
        Assert.True(before > 0f && before < 1.2e-38f, $"expected a denormal before flushing, got {before}");
        Assert.True(flushed);
        Assert.Equal(0f, after);
        Assert.True(child);
        Assert.Equal(0f, childProduct);
        Assert.False(OnOwnThread(Denormals.AreFlushed)); // threads started from an unflushed thread stay as they were
    }

    [SkippableFact]
    public void Libtorch_kernels_on_a_flushed_thread_flush_too()
    {
        SkipUnlessApplies();
        var (kept, flushed) = OnOwnThread(() =>
        {
            using var tiny = tensor(new[] { 1e-30f });
            using var keptResult = tiny.mul(1e-10f);
            float kept = keptResult.item<float>();
            Denormals.Flush();
            using var flushedResult = tiny.mul(1e-10f);
            return (kept, flushedResult.item<float>());
        });
        Assert.True(kept > 0f && kept < 1.2e-38f, $"expected libtorch to keep the denormal, got {kept}");
        Assert.Equal(0f, flushed);
    }
}
