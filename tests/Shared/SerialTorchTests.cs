// TorchSharp 0.107 frees the temporary Scalars it makes (an implicit double -> Scalar, the alpha = 1 of add and sub) from
// finalizers, and a garbage collection started by another thread can run one while libtorch still reads it
// (docs/performance.md, "TorchSharp's temporary Scalars"). Test classes running in parallel are such threads: the
// assemblies that run TorchSharp code include this file and run their tests one at a time.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

internal static class TestNativeSetup
{
    // Tests build blocks directly, not only generated models or the facade: set libtorch up as they would, before any test.
#pragma warning disable CA2255 // deliberate: before the first test touches libtorch
    [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
    internal static void Prepare() => Ddpm.Generated.GeneratedModelSupport.Prepare("tests");
}
