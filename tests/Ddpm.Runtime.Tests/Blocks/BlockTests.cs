using Ddpm.Blocks;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Blocks;

public class BlockTests
{
    static float[] Values(Tensor t) => t.detach().cpu().to(ScalarType.Float32).data<float>().ToArray();

    static void AssertClose(Tensor expected, Tensor actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = Values(expected);
        var a = Values(actual);
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= tolerance * (1 + Math.Abs(e[i])), $"element {i}: expected {e[i]}, got {a[i]}");
    }

    static string[] Keys(nn.Module module) => module.state_dict().Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]").ToArray();

    [Fact]
    public void GroupNorm_is_initialised_to_ones_and_zeros()
    {
        using var norm = GroupNorms.Create(2, 6);
        Assert.All(Values(norm.weight!), v => Assert.Equal(1f, v));
        Assert.All(Values(norm.bias!), v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => GroupNorms.Create(4, 6));
    }

    [Fact]
    public void Sinusoidal_embeddings_match_the_closed_form()
    {
        using var embed = new SinusoidalPositionEmbeddings(8);
        using var output = embed.forward(tensor(new long[] { 0, 3 }));
        Assert.Equal(new long[] { 2, 8 }, output.shape);
        var v = Values(output);
        for (int i = 0; i < 4; i++)
        {
            double frequency = Math.Exp(-i * Math.Log(10000) / 3);
            Assert.Equal(0.0, v[i], 6);                               // sin(0)
            Assert.Equal(1.0, v[4 + i], 6);                           // cos(0)
            Assert.Equal(Math.Sin(3 * frequency), v[8 + i], 5);
            Assert.Equal(Math.Cos(3 * frequency), v[8 + 4 + i], 5);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => new SinusoidalPositionEmbeddings(7));
    }

    [Fact]
    public void Weight_standardized_conv_uses_the_standardised_kernel()
    {
        using var conv = new WeightStandardizedConv2d(1, 1, 3, padding: 1);
        using (no_grad())
        {
            conv.Weight.copy_(arange(9, dtype: ScalarType.Float32).reshape(1, 1, 3, 3));
            conv.Bias!.fill_(0.5f);
        }
        // Kernel 0..8: mean 4, population variance 60/9.
        double std = Math.Sqrt(60.0 / 9 + 1e-5);
        using var delta = zeros(1, 1, 3, 3);
        using (no_grad()) delta[0, 0, 1, 1] = tensor(1f);
        using var output = conv.forward(delta);
        var v = Values(output);
        // Cross-correlation with a centred delta gives the kernel flipped: out[y, x] = w[2 - y, 2 - x].
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                Assert.Equal(((2 - y) * 3 + (2 - x) - 4) / std + 0.5, v[y * 3 + x], 5);
        Assert.Equal(new[] { "weight [1, 1, 3, 3]", "bias [1]" }, Keys(conv));
        Assert.Equal(1e-5, WeightStandardizedConv2d.EpsFor(ScalarType.Float32));
        Assert.Equal(1e-3, WeightStandardizedConv2d.EpsFor(ScalarType.BFloat16));
    }

    [Fact]
    public void Residual_adds_its_input_and_PreNorm_normalises_first()
    {
        using var residual = new Residual(nn.Identity());
        using var x = tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 1, 2, 2);
        using var doubled = residual.forward(x);
        Assert.Equal(new float[] { 2, 4, 6, 8 }, Values(doubled));

        using var preNorm = new PreNorm(1, nn.Identity());
        using var normed = preNorm.forward(x);
        double std = Math.Sqrt(1.25 + 1e-5); // population variance of 1..4
        Assert.Equal(new[] { -1.5 / std, -0.5 / std, 0.5 / std, 1.5 / std }, Values(normed).Select(f => (double)f), new ToleranceComparer(1e-5));
        Assert.Equal(new[] { "norm.weight [1]", "norm.bias [1]" }, Keys(preNorm));
    }

    [Fact]
    public void ResnetBlock_matches_a_functional_reference_and_names_its_parameters()
    {
        manual_seed(1);
        using var block = new ResnetBlock(4, 8, timeEmbDim: 6, groups: 4);
        Assert.Equal(new[]
        {
            "mlp.1.weight [16, 6]", "mlp.1.bias [16]",
            "block1.proj.weight [8, 4, 3, 3]", "block1.proj.bias [8]", "block1.norm.weight [8]", "block1.norm.bias [8]",
            "block2.proj.weight [8, 8, 3, 3]", "block2.proj.bias [8]", "block2.norm.weight [8]", "block2.norm.bias [8]",
            "res_conv.weight [8, 4, 1, 1]", "res_conv.bias [8]",
        }, Keys(block));

        using var x = randn(2, 4, 5, 5);
        using var t = randn(2, 6);
        using var actual = block.forward(x, t);

        var p = block.state_dict();
        static Tensor Ws(Tensor w) => (w - w.mean(new long[] { 1, 2, 3 }, keepdim: true)) / (w.var(new long[] { 1, 2, 3 }, unbiased: false, keepdim: true) + 1e-5).sqrt();
        var film = nn.functional.linear(nn.functional.silu(t), p["mlp.1.weight"], p["mlp.1.bias"]);
        var scale = film[.., ..8].reshape(2, 8, 1, 1);
        var shift = film[.., 8..].reshape(2, 8, 1, 1);
        var h = nn.functional.conv2d(x, Ws(p["block1.proj.weight"]), p["block1.proj.bias"], padding: new long[] { 1, 1 });
        h = nn.functional.group_norm(h, 4, p["block1.norm.weight"], p["block1.norm.bias"]);
        h = nn.functional.silu(h * (scale + 1) + shift);
        h = nn.functional.conv2d(h, Ws(p["block2.proj.weight"]), p["block2.proj.bias"], padding: new long[] { 1, 1 });
        h = nn.functional.silu(nn.functional.group_norm(h, 4, p["block2.norm.weight"], p["block2.norm.bias"]));
        var expected = h + nn.functional.conv2d(x, p["res_conv.weight"], p["res_conv.bias"]);
        AssertClose(expected, actual, 1e-4);
    }

    [Fact]
    public void ResnetBlock_rejects_channels_not_divisible_by_groups()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ResnetBlock(4, 6, 8, groups: 4));
        Assert.Equal("groups", error.ParamName);
        Assert.Contains("(6)", error.Message);
    }

    [Fact]
    public void Attention_matches_the_einsum_reference()
    {
        manual_seed(2);
        using var attention = new Attention(6, heads: 2, dimHead: 3);
        Assert.Equal(new[] { "to_qkv.weight [18, 6, 1, 1]", "to_out.weight [6, 6, 1, 1]", "to_out.bias [6]" }, Keys(attention));
        using var x = randn(2, 6, 3, 4);
        using var actual = attention.forward(x);
        var p = attention.state_dict();
        var qkv = nn.functional.conv2d(x, p["to_qkv.weight"]).chunk(3, 1);
        Tensor Heads(Tensor t) => t.reshape(2, 2, 3, 12); // b (h c) x y -> b h c (x y)
        var q = Heads(qkv[0]) * Math.Pow(3, -0.5);
        var sim = einsum("bhdi,bhdj->bhij", q, Heads(qkv[1]));
        var attn = (sim - sim.amax(new long[] { -1 }, keepdim: true)).softmax(-1);
        var output = einsum("bhij,bhdj->bhid", attn, Heads(qkv[2]));
        output = output.permute(0, 1, 3, 2).reshape(2, 6, 3, 4);
        AssertClose(nn.functional.conv2d(output, p["to_out.weight"], p["to_out.bias"]), actual);
    }

    [Fact]
    public void LinearAttention_matches_the_einsum_reference()
    {
        manual_seed(3);
        using var attention = new LinearAttention(6, heads: 2, dimHead: 3);
        Assert.Equal(new[]
        {
            "to_qkv.weight [18, 6, 1, 1]", "to_out.0.weight [6, 6, 1, 1]", "to_out.0.bias [6]", "to_out.1.weight [6]", "to_out.1.bias [6]",
        }, Keys(attention));
        using var x = randn(2, 6, 3, 4);
        using var actual = attention.forward(x);
        var p = attention.state_dict();
        var qkv = nn.functional.conv2d(x, p["to_qkv.weight"]).chunk(3, 1);
        Tensor Heads(Tensor t) => t.reshape(2, 2, 3, 12);
        var q = Heads(qkv[0]).softmax(-2) * Math.Pow(3, -0.5);
        var k = Heads(qkv[1]).softmax(-1);
        var context = einsum("bhdn,bhen->bhde", k, Heads(qkv[2]));
        var output = einsum("bhde,bhdn->bhen", context, q).reshape(2, 6, 3, 4);
        output = nn.functional.conv2d(output, p["to_out.0.weight"], p["to_out.0.bias"]);
        AssertClose(nn.functional.group_norm(output, 1, p["to_out.1.weight"], p["to_out.1.bias"]), actual);
    }

    [Fact]
    public void Attention_rejects_bad_heads()
    {
        Assert.Equal("heads", Assert.Throws<ArgumentOutOfRangeException>(() => new Attention(8, heads: 0)).ParamName);
        Assert.Equal("dimHead", Assert.Throws<ArgumentOutOfRangeException>(() => new LinearAttention(8, dimHead: 0)).ParamName);
    }

    [Fact]
    public void Downsample_is_space_to_depth_then_a_1x1_conv()
    {
        using var down = new Downsample(1, 4);
        Assert.Equal(new[] { "1.weight [4, 4, 1, 1]", "1.bias [4]" }, Keys(down));
        using (no_grad())
        {
            down.state_dict()["1.weight"].copy_(eye(4).reshape(4, 4, 1, 1));
            down.state_dict()["1.bias"].zero_();
        }
        using var x = arange(16, dtype: ScalarType.Float32).reshape(1, 1, 4, 4);
        using var y = down.forward(x);
        Assert.Equal(new long[] { 1, 4, 2, 2 }, y.shape);
        // Channel (p1 * 2 + p2) holds x[2i + p1, 2j + p2].
        Assert.Equal(new float[] { 0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15 }, Values(y));
        Assert.Throws<ArgumentException>(() => down.forward(zeros(1, 1, 3, 4)));
    }

    [Fact]
    public void Upsample_is_nearest_neighbour_then_a_3x3_conv()
    {
        using var up = new Upsample(1, 1);
        Assert.Equal(new[] { "1.weight [1, 1, 3, 3]", "1.bias [1]" }, Keys(up));
        using (no_grad())
        {
            var w = up.state_dict()["1.weight"];
            w.zero_();
            w[0, 0, 1, 1] = tensor(1f);
            up.state_dict()["1.bias"].zero_();
        }
        using var x = tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 1, 2, 2);
        using var y = up.forward(x);
        Assert.Equal(new float[] { 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4 }, Values(y));
    }

    sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(double value) => 0;
    }
}
