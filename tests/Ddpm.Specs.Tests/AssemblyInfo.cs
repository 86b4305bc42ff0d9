// Tests seed TorchSharp's global generator and then build models from it; run them one at a time
// so no other test draws from the generator in between.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Ddpm.Specs.Tests
{
    internal static class ModelLibraryLoader
    {
        /// <summary>The repository's models register from Ddpm.Models' module initializer; tests that find them by name need it run.</summary>
        [System.Runtime.CompilerServices.ModuleInitializer]
        internal static void Load() => Ddpm.Models.ModelLibrary.Load();
    }
}
