using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Blocks;

/// <summary>WS-conv 3x3 -> GroupNorm -> optional FiLM (x * (scale + 1) + shift) -> SiLU.</summary>
public sealed class Block : nn.Module<Tensor, Tensor>
{
    private readonly WeightStandardizedConv2d proj;
    private readonly GroupNorm norm;
    private readonly SiLU act;

    /// <summary>Creates a block mapping <paramref name="dim"/> channels to <paramref name="dimOut"/>.</summary>
    /// <param name="dim">Input channels.</param>
    /// <param name="dimOut">Output channels; must be divisible by <paramref name="groups"/>.</param>
    /// <param name="groups">GroupNorm groups.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dimOut"/> is not divisible by <paramref name="groups"/>.</exception>
    public Block(long dim, long dimOut, long groups = 8) : base(nameof(Block))
    {
        if (dimOut % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"Block output channels ({dimOut}) must be divisible by groups ({groups}).");
        proj = new WeightStandardizedConv2d(dim, dimOut, 3, padding: 1);
        norm = GroupNorms.Create(groups, dimOut);
        act = nn.SiLU();
        RegisterComponents();
    }

    /// <summary>Applies the block without FiLM modulation: [B, dim, H, W] to [B, dimOut, H, W].</summary>
    public override Tensor forward(Tensor x) => forward(x, null, null);

    /// <summary>Applies the block; scale and shift are [B, C, 1, 1] or both null.</summary>
    /// <param name="x">Feature map [B, dim, H, W].</param>
    /// <param name="scale">FiLM scale, applied as <c>scale + 1</c>; ignored unless <paramref name="shift"/> is given too.</param>
    /// <param name="shift">FiLM shift added after the scaling; ignored unless <paramref name="scale"/> is given too.</param>
    /// <returns>[B, dimOut, H, W].</returns>
    public Tensor forward(Tensor x, Tensor? scale, Tensor? shift)
    {
        using var scope = NewDisposeScope();
        var h = norm.forward(proj.forward(x));
        if (scale is not null && shift is not null)
            h = torch.addcmul(shift, h, scale + 1, 1);
        return act.forward(h).MoveToOuterDisposeScope();
    }
}
