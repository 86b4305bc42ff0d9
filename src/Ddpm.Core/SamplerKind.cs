#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore;
#else
namespace Ddpm;
#endif

/// <summary>The reverse-process samplers; YAML and the CLI spell them ddpm, ddim, dpmpp-2m and dpmpp-2m-sde.</summary>
#if DDPM_GENERATOR
internal enum SamplerKind
#else
public enum SamplerKind
#endif
{
    /// <summary>Ancestral sampling through all T steps (Algorithm 2 of Ho et al. 2020).</summary>
    Ddpm = 0,
    /// <summary>DDIM over a sub-sequence of timesteps (Song et al. 2021).</summary>
    Ddim = 1,
    /// <summary>DPM-Solver++(2M), multistep second order (Lu et al. 2022).</summary>
    DpmSolver2M = 2,
    /// <summary>SDE-DPM-Solver++(2M): the same multistep scheme on the reverse SDE, with fresh noise at every step (Lu et al. 2022).</summary>
    DpmSolver2MSde = 3,
}
