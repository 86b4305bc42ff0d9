using Ddpm.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Upsample = Ddpm.Blocks.Upsample;

namespace Ddpm.Runtime.Tests.Training;

/// <summary>
/// Test-only: a two-level U-Net for 1x8x8 images built from the runtime blocks
/// (init conv, ResnetBlocks with a sinusoidal time MLP, linear attention in PreNorm + Residual,
/// Downsample/Upsample with a skip connection, final 1x1 conv). About 40k parameters.
/// Its weights come from <paramref name="seed"/> alone, never from torch's global generator,
/// so tests running in parallel cannot change them.
/// </summary>
internal sealed class SmallTestUNet : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Sequential time_mlp;
    private readonly Conv2d init_conv;
    private readonly ResnetBlock down;
    private readonly Residual down_attn;
    private readonly Downsample downsample;
    private readonly ResnetBlock mid;
    private readonly Upsample upsample;
    private readonly ResnetBlock up;
    private readonly Conv2d final_conv;

    public SmallTestUNet(long seed, long dim = 16) : base(nameof(SmallTestUNet))
    {
        long timeDim = dim * 2;
        time_mlp = nn.Sequential(("0", new SinusoidalPositionEmbeddings(dim)), ("1", nn.Linear(dim, timeDim)),
                                 ("2", nn.GELU()), ("3", nn.Linear(timeDim, timeDim)));
        init_conv = nn.Conv2d(1, dim, 3, padding: 1);
        down = new ResnetBlock(dim, dim, timeDim, groups: 4);
        down_attn = new Residual(new PreNorm(dim, new LinearAttention(dim, heads: 2, dimHead: 8)));
        downsample = new Downsample(dim, dim * 2);
        mid = new ResnetBlock(dim * 2, dim * 2, timeDim, groups: 4);
        upsample = new Upsample(dim * 2, dim);
        up = new ResnetBlock(dim * 2, dim, timeDim, groups: 4);
        final_conv = nn.Conv2d(dim, 1, 1);
        RegisterComponents();
        Reinitialise(this, seed);
    }

    public override Tensor forward(Tensor x, Tensor time)
    {
        using var scope = NewDisposeScope();
        var emb = time_mlp.forward(time);
        var h0 = init_conv.forward(x);
        var h1 = down_attn.forward(down.forward(h0, emb));            // [b, dim, 8, 8]
        var h2 = mid.forward(downsample.forward(h1), emb);            // [b, 2 dim, 4, 4]
        var h3 = upsample.forward(h2);                                 // [b, dim, 8, 8]
        var h4 = up.forward(cat(new[] { h3, h1 }, dim: 1), emb);      // skip connection
        return final_conv.forward(h4).MoveToOuterDisposeScope();
    }

    /// <summary>PyTorch's default bound U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every conv and linear layer, from a private generator.</summary>
    private static void Reinitialise(nn.Module module, long seed)
    {
        using var generator = new Generator(unchecked((ulong)seed), CPU);
        using var _ = no_grad();
        foreach (var (_, child) in module.named_modules())
        {
            (Tensor? weight, Tensor? bias) = child switch
            {
                Conv2d c => ((Tensor?)c.weight, (Tensor?)c.bias),
                Linear l => (l.weight, l.bias),
                WeightStandardizedConv2d w => (w.Weight, w.Bias),
                _ => (null, null),
            };
            if (weight is null) continue;
            double bound = 1.0 / Math.Sqrt(weight.numel() / weight.shape[0]);
            weight.uniform_(-bound, bound, generator);
            bias?.uniform_(-bound, bound, generator);
        }
    }
}

/// <summary>Test-only: predicts eps = w * x_t with one scalar parameter, for closed-form checks.</summary>
internal sealed class ScalarTestModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Parameter w;

    public ScalarTestModel(float initial) : base(nameof(ScalarTestModel))
    {
        w = new Parameter(tensor(new[] { initial }));
        RegisterComponents();
    }

    public Parameter W => w;
    public float Value => w.item<float>();

    public override Tensor forward(Tensor x, Tensor time) => x * w;
}

/// <summary>Test-only: wraps a model and makes its output NaN from call <paramref name="nanFromCall"/> on (1-based).</summary>
internal sealed class NanInjectingModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor, Tensor> inner;
    private readonly int nanFromCall;
    private int calls;

    public NanInjectingModel(nn.Module<Tensor, Tensor, Tensor> inner, int nanFromCall) : base(nameof(NanInjectingModel))
    {
        this.inner = inner;
        this.nanFromCall = nanFromCall;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor time)
    {
        var y = inner.forward(x, time);
        if (++calls < nanFromCall) return y;
        using (y) return y * double.NaN;
    }
}
