using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>GroupNorm as PyTorch builds it.</summary>
public static class GroupNorms
{
    /// <summary>
    /// TorchSharp 0.107's nn.GroupNorm leaves its affine weight and bias uninitialised (PyTorch sets
    /// ones and zeros); without this the first forward pass can already be NaN.
    /// </summary>
    public static GroupNorm Create(long groups, long channels, double eps = 1e-5)
    {
        if (groups < 1 || channels % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"GroupNorm needs channels ({channels}) divisible by groups (>= 1).");
        var norm = nn.GroupNorm(groups, channels, eps);
        using (no_grad())
        {
            nn.init.ones_(norm.weight!);
            nn.init.zeros_(norm.bias!);
        }
        return norm;
    }
}
