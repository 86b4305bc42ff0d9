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

    public Block(long dim, long dimOut, long groups = 8) : base(nameof(Block))
    {
        if (dimOut % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"Block output channels ({dimOut}) must be divisible by groups ({groups}).");
        proj = new WeightStandardizedConv2d(dim, dimOut, 3, padding: 1);
        norm = GroupNorms.Create(groups, dimOut);
        act = nn.SiLU();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, null, null);

    /// <summary>Applies the block; scale and shift are [B, C, 1, 1] or both null.</summary>
    public Tensor forward(Tensor x, Tensor? scale, Tensor? shift)
    {
        using var scope = NewDisposeScope();
        var h = norm.forward(proj.forward(x));
        if (scale is not null && shift is not null)
            h = torch.addcmul(shift, h, scale + 1, 1);
        return act.forward(h).MoveToOuterDisposeScope();
    }
}
