using System.Runtime.CompilerServices;

namespace Ddpm.Models;

/// <summary>
/// The project's model library. Each model registers itself in <see cref="ModelCatalog"/> from a generated module
/// initializer, which runs when this assembly loads; a program that finds models only by name calls <see cref="Load"/>
/// first, because nothing else of it may have loaded the assembly yet.
/// </summary>
public static class ModelLibrary
{
    /// <summary>Makes sure every model of this library is in the catalog.</summary>
    public static void Load() => RuntimeHelpers.RunModuleConstructor(typeof(ModelLibrary).Module.ModuleHandle);
}
