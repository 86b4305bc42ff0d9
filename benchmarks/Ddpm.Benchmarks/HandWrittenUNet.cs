using Ddpm.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Benchmarks;

/// <summary>
/// The baseline for the generated module's overhead: the tutorial's U-Net written by hand in the
/// usual TorchSharp style (ModuleList indexing and casts in forward, a skip stack, x.clone()),
/// with the same blocks and the same configuration as FashionMnistUNet.
/// </summary>
public sealed class HandWrittenUNet : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Conv2d init_conv;
    private readonly Sequential time_mlp;
    private readonly ModuleList<ModuleList<nn.Module>> downs = new();
    private readonly ModuleList<ModuleList<nn.Module>> ups = new();
    private readonly ResnetBlock mid_block1, mid_block2, final_res_block;
    private readonly Residual mid_attn;
    private readonly Conv2d final_conv;

    public HandWrittenUNet(long dim = 28, long channels = 1, long[]? dimMults = null, long groups = 4) : base(nameof(HandWrittenUNet))
    {
        dimMults ??= new long[] { 1, 2, 4 };
        var dims = new[] { dim }.Concat(dimMults.Select(m => dim * m)).ToArray();
        var inOut = dims.Zip(dims.Skip(1)).ToArray();
        long timeDim = dim * 4;
        init_conv = nn.Conv2d(channels, dim, 1);
        time_mlp = nn.Sequential(("0", new SinusoidalPositionEmbeddings(dim)), ("1", nn.Linear(dim, timeDim)), ("2", nn.GELU()), ("3", nn.Linear(timeDim, timeDim)));
        for (int i = 0; i < inOut.Length; i++)
        {
            var (dimIn, dimOut) = inOut[i];
            bool last = i == inOut.Length - 1;
            downs.Add(new ModuleList<nn.Module>(
                new ResnetBlock(dimIn, dimIn, timeDim, groups), new ResnetBlock(dimIn, dimIn, timeDim, groups),
                new Residual(new PreNorm(dimIn, new LinearAttention(dimIn))),
                last ? nn.Conv2d(dimIn, dimOut, 3, padding: 1) : new Downsample(dimIn, dimOut)));
        }
        long mid = dims[^1];
        mid_block1 = new ResnetBlock(mid, mid, timeDim, groups);
        mid_attn = new Residual(new PreNorm(mid, new Attention(mid)));
        mid_block2 = new ResnetBlock(mid, mid, timeDim, groups);
        for (int i = 0; i < inOut.Length; i++)
        {
            var (dimIn, dimOut) = inOut[inOut.Length - 1 - i];
            bool last = i == inOut.Length - 1;
            ups.Add(new ModuleList<nn.Module>(
                new ResnetBlock(dimOut + dimIn, dimOut, timeDim, groups), new ResnetBlock(dimOut + dimIn, dimOut, timeDim, groups),
                new Residual(new PreNorm(dimOut, new LinearAttention(dimOut))),
                last ? nn.Conv2d(dimOut, dimIn, 3, padding: 1) : new Ddpm.Blocks.Upsample(dimOut, dimIn)));
        }
        final_res_block = new ResnetBlock(dim * 2, dim, timeDim, groups);
        final_conv = nn.Conv2d(dim, channels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor time)
    {
        using var scope = NewDisposeScope();
        x = init_conv.forward(x);
        var r = x.clone();
        var t = time_mlp.forward(time);
        var h = new Stack<Tensor>();
        foreach (var stage in downs)
        {
            x = ((ResnetBlock)stage[0]).forward(x, t);
            h.Push(x);
            x = ((ResnetBlock)stage[1]).forward(x, t);
            x = ((nn.Module<Tensor, Tensor>)stage[2]).forward(x);
            h.Push(x);
            x = ((nn.Module<Tensor, Tensor>)stage[3]).forward(x);
        }
        x = mid_block1.forward(x, t);
        x = mid_attn.forward(x);
        x = mid_block2.forward(x, t);
        foreach (var stage in ups)
        {
            x = ((ResnetBlock)stage[0]).forward(cat(new[] { x, h.Pop() }, 1), t);
            x = ((ResnetBlock)stage[1]).forward(cat(new[] { x, h.Pop() }, 1), t);
            x = ((nn.Module<Tensor, Tensor>)stage[2]).forward(x);
            x = ((nn.Module<Tensor, Tensor>)stage[3]).forward(x);
        }
        x = final_res_block.forward(cat(new[] { x, r }, 1), t);
        return final_conv.forward(x).MoveToOuterDisposeScope();
    }
}
