using System.ComponentModel;

namespace Ddpm.Generated;

/// <summary>What generated models call; not for users (hidden from IntelliSense).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GeneratedModelSupport
{
    /// <summary>
    /// Runs the process's native set-up once (Native/NativeSetup.cs) and returns <paramref name="moduleName"/>: a generated
    /// model passes its name through this to its base constructor, so the set-up precedes any libtorch call the model makes,
    /// whoever builds it.
    /// </summary>
    public static string Prepare(string moduleName)
    {
        Ddpm.Native.NativeSetup.EnsureConfigured();
        return moduleName;
    }
}
