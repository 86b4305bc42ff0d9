using System.CommandLine;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>Options several commands share.</summary>
internal static class Options
{
    public static Option<string?> Device() => new("--device")
    {
        Description = "cpu or cuda (default: cuda when available, else cpu).",
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            if (value is not ("cpu" or "cuda")) result.AddError($"--device must be cpu or cuda, got '{value}'.");
            return value;
        },
    };

    public static Option<string?> Precision() => new("--precision")
    {
        Description = "fp32, or bf16 (bfloat16 compute with float32 weights; fast on CPUs with AMX or AVX-512-BF16).",
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            if (value is not ("fp32" or "bf16")) result.AddError($"--precision must be fp32 or bf16, got '{value}'.");
            return value;
        },
    };

    public static string ResolveDevice(string? requested)
    {
        if (requested == "cuda" && !cuda.is_available())
            throw new UsageException("--device cuda: CUDA is not available (this build uses the CPU libtorch; see README, 'GPU').");
        return requested ?? (cuda.is_available() ? "cuda" : "cpu");
    }
}
