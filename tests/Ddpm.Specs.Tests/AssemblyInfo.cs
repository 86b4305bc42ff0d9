// Tests run one at a time (tests/Shared/SerialTorchTests.cs), which they also need for another reason: they seed
// TorchSharp's global generator and then build models from it, so no other test may draw from it in between.

namespace Ddpm.Specs.Tests
{
    internal static class ModelLibraryLoader
    {
        /// <summary>The repository's models register from Ddpm.Models' module initializer; tests that find them by name need it run.</summary>
        [System.Runtime.CompilerServices.ModuleInitializer]
        internal static void Load() => Ddpm.Models.ModelLibrary.Load();
    }
}
