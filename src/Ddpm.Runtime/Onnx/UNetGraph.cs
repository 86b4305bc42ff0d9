using Ddpm.Blocks;
using Ddpm.Onnx;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static Ddpm.Interop.OnnxGraphBuilder;
using static TorchSharp.torch;
using Upsample = Ddpm.Blocks.Upsample;

namespace Ddpm.Interop;

/// <summary>
/// Writes a generated U-Net as ONNX nodes by walking its module tree, which the generator registers under the tutorial's
/// names (init_conv, time_mlp, downs.i.j, mid_block1, mid_attn, mid_block2, ups.i.j, final_res_block, final_conv), with
/// the wiring of the generated forward pass: down stage i keeps a skip after each ResNet block (the last one after the
/// stage's attention), up stage j concatenates them back in reverse order, the final block concatenates the init_conv
/// output. Whatever the spec declared (stages, blocks, attention kinds, heads, groups) is read from the modules themselves.
/// Weight standardisation is folded into the exported kernels; GroupNorm is lowered to InstanceNormalization over
/// [B, groups, C/groups * H * W] followed by the per-channel affine, which is GroupNorm's definition.
/// </summary>
internal sealed class UNetGraph
{
    private readonly OnnxGraphBuilder g;
    private readonly string timeEmbedding;
    private long resolution;

    private UNetGraph(OnnxGraphBuilder builder, string timeEmbedding, long imageSize)
    {
        g = builder;
        this.timeEmbedding = timeEmbedding;
        resolution = imageSize;
    }

    /// <summary>
    /// Adds the U-Net's nodes; reads inputs <c>images</c> and <c>timesteps</c> (and <c>labels</c> for a model with a class
    /// embedding), returns the prediction's value name.
    /// </summary>
    /// <exception cref="NotSupportedException">The module is not a generated U-Net (a child the exporter does not know).</exception>
    public static string Build(OnnxGraphBuilder builder, nn.Module model, long imageSize)
    {
        var children = Children(model, "");
        string[] known = { "init_conv", "time_mlp", "class_emb", "downs", "mid_block1", "mid_attn", "mid_block2", "ups", "final_res_block", "final_conv" };
        foreach (string name in children.Keys)
            if (!known.Contains(name))
                throw new NotSupportedException($"ONNX export: the model has a module '{name}' ({children[name].GetType().Name}), which is not part of a generated U-Net; " +
                                                $"the exporter knows {string.Join(", ", known)}.");
        var time = TimeMlp(builder, Require<Sequential>(children, "time_mlp", ""), OnnxMetadata.TimestepsInput);
        if (children.TryGetValue("class_emb", out var classEmbedding))
        {
            // A conditional model adds its class embedding (row `labels`, the null class included) to the time embedding.
            var table = As<Embedding>(classEmbedding, "class_emb");
            string rows = builder.Node("Gather", "class_emb", new[] { builder.Weight("class_emb.weight", table.weight!), OnnxMetadata.LabelsInput }, Int("axis", 0));
            time = builder.Node("Add", "class_emb.add", new[] { time, rows });
        }
        var graph = new UNetGraph(builder, time, imageSize);
        return graph.Forward(children);
    }

    private string Forward(Dictionary<string, nn.Module> children)
    {
        string x = Conv(Require<Conv2d>(children, "init_conv", ""), OnnxMetadata.ImagesInput, "init_conv");
        string initial = x;
        var skips = new Stack<string>();

        var downs = Children(Require<nn.Module>(children, "downs", ""), "downs");
        for (int i = 0; i < downs.Count; i++)
        {
            string path = $"downs.{i}";
            var stage = Stage(downs, i, path);
            var (blocks, attention, resample) = Split(stage, path);
            for (int b = 0; b < blocks.Count; b++)
            {
                x = ResnetBlock(blocks[b], x, $"{path}.{b}");
                if (b == blocks.Count - 1 && attention is not null) x = Attention(attention, x, $"{path}.{blocks.Count}");
                skips.Push(x);
            }
            x = Resample(resample, x, $"{path}.{stage.Count - 1}");
        }

        x = ResnetBlock(Require<ResnetBlock>(children, "mid_block1", ""), x, "mid_block1");
        if (children.TryGetValue("mid_attn", out var midAttention)) x = Attention(As<Residual>(midAttention, "mid_attn"), x, "mid_attn");
        x = ResnetBlock(Require<ResnetBlock>(children, "mid_block2", ""), x, "mid_block2");

        var ups = Children(Require<nn.Module>(children, "ups", ""), "ups");
        for (int j = 0; j < ups.Count; j++)
        {
            string path = $"ups.{j}";
            var stage = Stage(ups, j, path);
            var (blocks, attention, resample) = Split(stage, path);
            for (int b = 0; b < blocks.Count; b++)
            {
                if (skips.Count == 0) throw new NotSupportedException($"ONNX export: {path}.{b} has no skip connection left; the up path has more blocks than the down path.");
                x = ResnetBlock(blocks[b], Concat(x, skips.Pop(), $"{path}.{b}.cat"), $"{path}.{b}");
            }
            if (attention is not null) x = Attention(attention, x, $"{path}.{blocks.Count}");
            x = Resample(resample, x, $"{path}.{stage.Count - 1}");
        }
        if (skips.Count != 0) throw new NotSupportedException($"ONNX export: {skips.Count} skip connections of the down path are not used by the up path.");

        x = ResnetBlock(Require<ResnetBlock>(children, "final_res_block", ""), Concat(x, initial, "final_res_block.cat"), "final_res_block");
        return Conv(Require<Conv2d>(children, "final_conv", ""), x, "final_conv");
    }

    // ---- Stages -------------------------------------------------------------------------------------------------------

    private static List<nn.Module> Stage(Dictionary<string, nn.Module> stages, int index, string path) =>
        stages[index.ToString(System.Globalization.CultureInfo.InvariantCulture)].named_children().Select(c => c.module).ToList();

    /// <summary>A stage is ResNet blocks, at most one attention (a Residual), then the resampling layer.</summary>
    private static (List<ResnetBlock> Blocks, Residual? Attention, nn.Module Resample) Split(List<nn.Module> stage, string path)
    {
        if (stage.Count < 2) throw new NotSupportedException($"ONNX export: {path} has {stage.Count} modules; a stage has ResNet blocks and a resampling layer.");
        var blocks = new List<ResnetBlock>();
        int i = 0;
        for (; i < stage.Count - 1 && stage[i] is ResnetBlock block; i++) blocks.Add(block);
        Residual? attention = null;
        if (i < stage.Count - 1) attention = As<Residual>(stage[i++], $"{path}.{i - 1}");
        if (i != stage.Count - 1) throw new NotSupportedException($"ONNX export: {path}.{i} ({stage[i].GetType().Name}) is not where a generated U-Net has it.");
        return (blocks, attention, stage[^1]);
    }

    private string Resample(nn.Module module, string x, string path)
    {
        switch (module)
        {
            case Downsample down:
            {
                // pixel_unshuffle puts channel c, offset k = 2 dy + dx at c * 4 + k; ONNX SpaceToDepth puts it at k * C + c.
                // The same values in another order: permute the 1x1 kernel's input channels to SpaceToDepth's order.
                var conv = As<Conv2d>(Children(down, path)["1"], path + ".1");
                using var scope = NewDisposeScope();
                var w = conv.weight!;
                long outChannels = w.shape[0], inChannels = w.shape[1] / 4;
                var permuted = w.reshape(outChannels, inChannels, 4).permute(0, 2, 1).reshape(outChannels, inChannels * 4, 1, 1);
                string folded = g.Node("SpaceToDepth", path + ".space_to_depth", new[] { x }, Int("blocksize", 2));
                resolution /= 2;
                return ConvNode(permuted, conv.bias, 0, folded, path + ".1");
            }
            case Upsample up:
            {
                string roi = "";
                string scales = g.Floats(path + ".scales", new[] { 1f, 1f, 2f, 2f }, 4);
                // Nearest x2 as torch's interpolate: source index floor(dst / 2).
                string upsampled = g.Node("Resize", path + ".upsample", new[] { x, roi, scales },
                    Text("mode", "nearest"), Text("coordinate_transformation_mode", "asymmetric"), Text("nearest_mode", "floor"));
                resolution *= 2;
                return Conv(As<Conv2d>(Children(up, path)["1"], path + ".1"), upsampled, path + ".1");
            }
            case Conv2d conv:
                return Conv(conv, x, path);
            default:
                throw new NotSupportedException($"ONNX export: {path} is a {module.GetType().Name}; a stage ends with Downsample, Upsample or Conv2d.");
        }
    }

    // ---- Blocks -------------------------------------------------------------------------------------------------------

    /// <summary>h = block1(x) with FiLM from the time embedding, h = block2(h), h + res_conv(x).</summary>
    private string ResnetBlock(ResnetBlock block, string x, string path)
    {
        var children = Children(block, path);
        var block1 = Require<Block>(children, "block1", path);
        var block2 = Require<Block>(children, "block2", path);
        long dimOut = ((WeightStandardizedConv2d)Children(block1, path + ".block1")["proj"]).Weight.shape[0];
        (string Scale, string Shift)? film = null;
        if (children.TryGetValue("mlp", out var mlp))
        {
            // mlp = SiLU -> Linear(time, 2 dimOut); chunk(2) gives scale then shift. Two Gemms over the halves of the
            // Linear avoid a Split; "+ 1" of x * (scale + 1) + shift is an Add after the Gemm, as in the forward pass.
            var linear = As<Linear>(Children(As<Sequential>(mlp, path + ".mlp"), path + ".mlp")["1"], path + ".mlp.1");
            string t = Silu(timeEmbedding, path + ".mlp.0");
            using var scope = NewDisposeScope();
            var w = linear.weight!;
            var b = linear.bias!;
            string scale = Gemm(t, w[TensorIndex.Slice(0, dimOut)], b[TensorIndex.Slice(0, dimOut)], path + ".mlp.1.scale");
            string shift = Gemm(t, w[TensorIndex.Slice(dimOut, 2 * dimOut)], b[TensorIndex.Slice(dimOut, 2 * dimOut)], path + ".mlp.1.shift");
            string axes = g.Int64s(path + ".film_axes", 2, 3);
            scale = g.Node("Add", path + ".scale_plus_1", new[] { scale, g.Scalar(path + ".one", 1f) });
            film = (g.Node("Unsqueeze", path + ".scale", new[] { scale, axes }), g.Node("Unsqueeze", path + ".shift", new[] { shift, axes }));
        }
        string h = Block(block1, x, film, path + ".block1");
        h = Block(block2, h, null, path + ".block2");
        string residual = children["res_conv"] is Conv2d resConv ? Conv(resConv, x, path + ".res_conv") : x;
        return g.Node("Add", path + ".out", new[] { h, residual });
    }

    /// <summary>Standardised conv -> GroupNorm -> optional x * (scale + 1) + shift -> SiLU.</summary>
    private string Block(Block block, string x, (string Scale, string Shift)? film, string path)
    {
        var children = Children(block, path);
        var proj = Require<WeightStandardizedConv2d>(children, "proj", path);
        string h;
        using (var scope = NewDisposeScope())
        {
            // The kernel the forward pass convolves float32 inputs with, computed by the same code (folded weight standardisation).
            var standardized = proj.StandardizedWeight(WeightStandardizedConv2d.EpsFor(ScalarType.Float32));
            h = ConvNode(standardized, proj.Bias, proj.Padding, x, path + ".proj");
        }
        h = GroupNorm(Require<GroupNorm>(children, "norm", path), h, path + ".norm");
        if (film is { } f)
            h = g.Node("Add", path + ".film", new[] { g.Node("Mul", path + ".scaled", new[] { h, f.Scale }), f.Shift });
        return Silu(h, path + ".act");
    }

    /// <summary>Residual(PreNorm(dim, attention)): x + attention(GroupNorm(1)(x)).</summary>
    private string Attention(Residual residual, string x, string path)
    {
        var preNorm = As<PreNorm>(Children(residual, path)["fn"], path + ".fn");
        var children = Children(preNorm, path + ".fn");
        string normed = GroupNorm(Require<GroupNorm>(children, "norm", path + ".fn"), x, path + ".fn.norm");
        string inner = path + ".fn.fn";
        string attended = children["fn"] switch
        {
            LinearAttention linear => LinearAttention(linear, normed, inner),
            Attention full => FullAttention(full, normed, inner),
            var other => throw new NotSupportedException($"ONNX export: {inner} is a {other.GetType().Name}; attention is LinearAttention or Attention."),
        };
        return g.Node("Add", path + ".out", new[] { x, attended });
    }

    /// <summary>q, k, v: the three thirds of to_qkv as separate 1x1 convs, each reshaped to [B, heads, dimHead, H*W].</summary>
    private (string Q, string K, string V) QueryKeyValue(Conv2d toQkv, long heads, long dimHead, string x, string path)
    {
        using var scope = NewDisposeScope();
        var w = toQkv.weight!;
        long hidden = heads * dimHead;
        string shape = g.Int64s(path + ".heads_shape", 0, heads, dimHead, -1);
        string Part(int i, string name) =>
            g.Node("Reshape", $"{path}.{name}", new[] { ConvNode(w[TensorIndex.Slice(i * hidden, (i + 1) * hidden)], null, 0, x, $"{path}.to_qkv.{name}"), shape });
        return (Part(0, "q"), Part(1, "k"), Part(2, "v"));
    }

    private string Merge(string output, long hidden, string path) =>
        g.Node("Reshape", path + ".merged", new[] { output, g.Int64s(path + ".merged_shape", 0, hidden, resolution, resolution) });

    /// <summary>softmax(q k^T * scale) v over all positions, per head.</summary>
    private string FullAttention(Attention attention, string x, string path)
    {
        var children = Children(attention, path);
        var (q, k, v) = QueryKeyValue(Require<Conv2d>(children, "to_qkv", path), attention.Heads, attention.DimHead, x, path);
        q = g.Node("Mul", path + ".q_scaled", new[] { q, g.Scalar(path + ".scale", (float)attention.Scale) });
        string sim = g.Node("MatMul", path + ".sim", new[] { Transpose(q, path + ".q_t"), k });           // [b, h, n, n]
        string attn = g.Node("Softmax", path + ".attn", new[] { sim }, Int("axis", -1));
        string output = g.Node("MatMul", path + ".attended", new[] { attn, Transpose(v, path + ".v_t") }); // [b, h, n, d]
        output = Merge(Transpose(output, path + ".attended_t"), attention.Heads * attention.DimHead, path);
        return Conv(Require<Conv2d>(children, "to_out", path), output, path + ".to_out");
    }

    /// <summary>Linear attention: softmax of q over features, of k over positions; context = k v^T.</summary>
    private string LinearAttention(LinearAttention attention, string x, string path)
    {
        var children = Children(attention, path);
        var (q, k, v) = QueryKeyValue(Require<Conv2d>(children, "to_qkv", path), attention.Heads, attention.DimHead, x, path);
        q = g.Node("Mul", path + ".q_scaled", new[] { g.Node("Softmax", path + ".q_softmax", new[] { q }, Int("axis", -2)), g.Scalar(path + ".scale", (float)attention.Scale) });
        k = g.Node("Softmax", path + ".k_softmax", new[] { k }, Int("axis", -1));
        string context = g.Node("MatMul", path + ".context", new[] { k, Transpose(v, path + ".v_t") });          // [b, h, d, e]
        string output = g.Node("MatMul", path + ".attended", new[] { Transpose(context, path + ".context_t"), q }); // [b, h, e, n]
        output = Merge(output, attention.Heads * attention.DimHead, path);
        var toOut = Children(Require<Sequential>(children, "to_out", path), path + ".to_out");
        output = Conv(As<Conv2d>(toOut["0"], path + ".to_out.0"), output, path + ".to_out.0");
        return GroupNorm(As<GroupNorm>(toOut["1"], path + ".to_out.1"), output, path + ".to_out.1");
    }

    // ---- Time embedding -----------------------------------------------------------------------------------------------

    /// <summary>time_mlp: sinusoidal embedding -> Linear -> GELU (exact, erf) -> Linear, from int64 timesteps [B].</summary>
    private static string TimeMlp(OnnxGraphBuilder g, Sequential mlp, string timesteps)
    {
        var children = Children(mlp, "time_mlp");
        var embedding = As<SinusoidalPositionEmbeddings>(children["0"], "time_mlp.0");
        // angles = float32(t)[:, None] * float32(frequencies)[None, :], then [sin, cos], as the module computes them.
        float[] frequencies = embedding.Frequencies.Select(f => (float)f).ToArray();
        string t = g.Node("Cast", "time_mlp.0.t", new[] { timesteps }, Int("to", (long)TensorProto.Types.DataType.Float));
        t = g.Node("Unsqueeze", "time_mlp.0.t_column", new[] { t, g.Int64s("time_mlp.0.axis", 1) });
        string angles = g.Node("Mul", "time_mlp.0.angles", new[] { t, g.Floats("time_mlp.0.frequencies", frequencies, 1, frequencies.Length) });
        string x = g.Node("Concat", "time_mlp.0.out", new[] { g.Node("Sin", "time_mlp.0.sin", new[] { angles }), g.Node("Cos", "time_mlp.0.cos", new[] { angles }) }, Int("axis", -1));
        var first = As<Linear>(children["1"], "time_mlp.1");
        x = GemmOf(g, x, first.weight!, first.bias, "time_mlp.1");
        if (children["2"] is not GELU) throw new NotSupportedException($"ONNX export: time_mlp.2 is a {children["2"].GetType().Name}, not GELU.");
        // GELU(x) = x * 0.5 * (1 + erf(x / sqrt(2))).
        string erf = g.Node("Erf", "time_mlp.2.erf", new[] { g.Node("Mul", "time_mlp.2.scaled", new[] { x, g.Scalar("time_mlp.2.rsqrt2", (float)(1 / Math.Sqrt(2))) }) });
        string gate = g.Node("Mul", "time_mlp.2.gate", new[] { g.Node("Add", "time_mlp.2.one_plus", new[] { erf, g.Scalar("time_mlp.2.one", 1f) }), g.Scalar("time_mlp.2.half", 0.5f) });
        x = g.Node("Mul", "time_mlp.2.out", new[] { x, gate });
        var second = As<Linear>(children["3"], "time_mlp.3");
        return GemmOf(g, x, second.weight!, second.bias, "time_mlp.3");
    }

    // ---- Layers -------------------------------------------------------------------------------------------------------

    private string Conv(Conv2d conv, string x, string path) =>
        ConvNode(conv.weight!, conv.bias, conv.weight!.shape[2] / 2, x, path);

    /// <summary>A stride-1 convolution with <paramref name="padding"/> on every side (every conv of the U-Net keeps the size or is 1x1).</summary>
    private string ConvNode(Tensor weight, Tensor? bias, long padding, string x, string path)
    {
        var inputs = new List<string> { x, g.Weight(path + ".weight", weight) };
        if (bias is not null) inputs.Add(g.Weight(path + ".bias", bias));
        long k = weight.shape[2];
        return g.Node("Conv", path, inputs.ToArray(), Ints("kernel_shape", k, weight.shape[3]), Ints("pads", padding, padding, padding, padding));
    }

    private string Gemm(string x, Tensor weight, Tensor? bias, string path) => GemmOf(g, x, weight, bias, path);

    /// <summary>Linear: x W^T + b.</summary>
    private static string GemmOf(OnnxGraphBuilder g, string x, Tensor weight, Tensor? bias, string path)
    {
        var inputs = new List<string> { x, g.Weight(path + ".weight", weight) };
        if (bias is not null) inputs.Add(g.Weight(path + ".bias", bias));
        return g.Node("Gemm", path, inputs.ToArray(), Int("transB", 1));
    }

    /// <summary>GroupNorm(groups, C): normalise each of [B, groups, -1] (InstanceNormalization), restore the shape, scale and shift per channel.</summary>
    private string GroupNorm(GroupNorm norm, string x, string path)
    {
        long groups = norm.num_groups;
        long channels = norm.weight!.shape[0];
        string grouped = g.Node("Reshape", path + ".grouped", new[] { x, g.Int64s(path + ".grouped_shape", 0, groups, -1) });
        var ones = Enumerable.Repeat(1f, (int)groups).ToArray();
        var zeros = new float[groups];
        string normed = g.Node("InstanceNormalization", path + ".normalized",
            new[] { grouped, g.Floats(path + ".unit_scale", ones, groups), g.Floats(path + ".zero_bias", zeros, groups) },
            Float("epsilon", (float)norm.eps));
        string restored = g.Node("Reshape", path + ".restored", new[] { normed, g.Node("Shape", path + ".shape", new[] { x }) });
        using var scope = NewDisposeScope();
        string scaled = g.Node("Mul", path + ".scaled", new[] { restored, g.Weight(path + ".weight", norm.weight!.reshape(channels, 1, 1)) });
        return g.Node("Add", path, new[] { scaled, g.Weight(path + ".bias", norm.bias!.reshape(channels, 1, 1)) });
    }

    private string Silu(string x, string path) => g.Node("Mul", path, new[] { x, g.Node("Sigmoid", path + ".sigmoid", new[] { x }) });

    private string Transpose(string x, string path) => g.Node("Transpose", path, new[] { x }, Ints("perm", 0, 1, 3, 2));

    private string Concat(string a, string b, string path) => g.Node("Concat", path, new[] { a, b }, Int("axis", 1));

    // ---- Module tree --------------------------------------------------------------------------------------------------

    private static Dictionary<string, nn.Module> Children(nn.Module module, string path)
    {
        var children = new Dictionary<string, nn.Module>(StringComparer.Ordinal);
        foreach (var (name, child) in module.named_children()) children[name] = child;
        return children;
    }

    private static T Require<T>(Dictionary<string, nn.Module> children, string name, string path) where T : nn.Module
    {
        string full = path.Length == 0 ? name : path + "." + name;
        if (!children.TryGetValue(name, out var child))
            throw new NotSupportedException($"ONNX export: the model has no '{full}'; it is not a U-Net the generator made.");
        return As<T>(child, full);
    }

    private static T As<T>(nn.Module module, string path) where T : nn.Module =>
        module as T ?? throw new NotSupportedException($"ONNX export: {path} is a {module.GetType().Name}, where a generated U-Net has a {typeof(T).Name}.");
}
