using Ddpm.Native;

namespace Ddpm.Runtime.Tests.Native;

/// <summary>Issue 27, item 6: the one native set-up says once on stderr which remedy it could not apply, in these words.</summary>
public class NativeSetupTests
{
    private const string Advice = "native memory: glibc malloc (tuned), not the tcmalloc at /x/libtcmalloc_minimal.so.4; ...";

    [Fact]
    public void Everything_applied_says_nothing()
    {
        Assert.Empty(NativeSetup.Problems("libtorch's own convolutions until a model's shapes are checked; oneMKL's full code path (its CPU vendor test answered as on Intel; checked against float64)",
                                          "tcmalloc (preloaded: /x/libtcmalloc_minimal.so.4)", Advice));
        Assert.Empty(NativeSetup.Problems("oneDNN and NNPACK off (libtorch's own convolutions)", "glibc malloc tuned (no mmap, no trim, one arena)", null));
    }

    [Fact]
    public void An_unreachable_convolution_switch_is_one_line_naming_why_and_the_way_out()
    {
        var problems = NativeSetup.Problems("oneDNN as shipped (could not reach libtorch's switch: Unable to load libtorch_cpu.so)", "glibc malloc tuned", null);
        Assert.Equal(["convolutions run as this libtorch ships them: could not reach libtorch's switch: Unable to load libtorch_cpu.so (set DDPM_ONEDNN=off if convolutions return NaN)."], problems);
    }

    [Theory]
    [InlineData("; oneMKL's generic code path (mkl_serv_intel_cpu_true not found in this libtorch)",
                "matrix products use oneMKL's generic code path (mkl_serv_intel_cpu_true not found in this libtorch); they run correctly, but slower on this CPU.")]
    [InlineData("; oneMKL's generic code path (could not patch mkl_serv_intel_cpu_true: errno 13)",
                "matrix products use oneMKL's generic code path (could not patch mkl_serv_intel_cpu_true: errno 13); they run correctly, but slower on this CPU.")]
    public void An_unpatched_gemm_vendor_test_is_one_line(string gemm, string expected) =>
        Assert.Equal([expected], NativeSetup.Problems("libtorch's own convolutions until a model's shapes are checked" + gemm, "glibc malloc tuned", null));

    [Fact]
    public void A_tcmalloc_that_is_there_but_not_preloaded_is_said_and_a_preloaded_one_is_not()
    {
        Assert.Equal([Advice], NativeSetup.Problems("oneDNN and NNPACK off (libtorch's own convolutions)", "glibc malloc tuned (no mmap, no trim, one arena)", Advice));
        Assert.Empty(NativeSetup.Problems("oneDNN and NNPACK off (libtorch's own convolutions)", "tcmalloc (preloaded: /x/libtcmalloc_minimal.so.4)", Advice));
    }
}
