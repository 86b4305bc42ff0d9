using System.CommandLine;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>Options several commands share.</summary>
internal static class Options
{
    public static Option<string?> Device() =>
        OneOf("--device", "cpu or cuda (default: cuda when available, else cpu).", "cpu", "cuda");

    public static Option<string?> Precision() =>
        OneOf("--precision", "fp32, or bf16 (bfloat16 compute with float32 weights; fast on CPUs with AMX or AVX-512-BF16).", "fp32", "bf16");

    /// <summary>A case-insensitive option whose value must be one of <paramref name="allowed"/> (given in lower case).</summary>
    private static Option<string?> OneOf(string name, string description, params string[] allowed) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            if (!allowed.Contains(value)) result.AddError($"{name} must be {string.Join(" or ", allowed)}, got '{value}'.");
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
