using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Models.Tests;

public class FashionMnistUNetTests
{
    /// <summary>Keys and shapes of the tutorial's PyTorch Unet(dim=28, channels=1, dim_mults=(1, 2, 4)); see Fixtures/tutorial_state_dict.py.</summary>
    static string[] TutorialStateDict() =>
        File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tutorial-fashion-mnist.state-dict.txt"));

    static long TutorialParameterCount() =>
        long.Parse(TutorialStateDict().Single(l => l.StartsWith("# parameters: ")).Substring("# parameters: ".Length));

    [Fact]
    public void State_dict_matches_the_tutorial_key_for_key_and_shape_for_shape()
    {
        using var model = new FashionMnistUNet();
        var expected = TutorialStateDict().Where(l => !l.StartsWith('#')).ToArray();
        var actual = model.state_dict().Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]").ToArray();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Generated_parameter_count_matches_the_live_module_and_the_tutorial()
    {
        using var model = new FashionMnistUNet();
        long live = model.parameters().Sum(p => p.numel());
        Assert.Equal(FashionMnistUNet.ParameterCount, live);
        Assert.Equal(FashionMnistUNet.ParameterCount, TutorialParameterCount());
    }

    [Fact]
    public void Forward_maps_a_batch_of_noisy_images_to_noise_of_the_same_shape()
    {
        manual_seed(0);
        using var model = new FashionMnistUNet();
        using var images = randn(4, 1, 28, 28);
        using var timesteps = randint(0, 300, new long[] { 4 });
        using var noise = model.forward(images, timesteps);
        Assert.Equal(new long[] { 4, 1, 28, 28 }, noise.shape);
        Assert.True(noise.isfinite().all().item<bool>());
        Assert.Equal(new long[] { 4, 1, 28, 28 }, FashionMnistUNet.BatchShape(4));
    }

    [Fact]
    public void Every_GroupNorm_starts_as_the_identity_affine_map()
    {
        using var model = new FashionMnistUNet();
        var norms = model.state_dict().Where(kv => kv.Key.Contains(".norm.") || kv.Key.Contains("to_out.1.")).ToList();
        Assert.NotEmpty(norms);
        foreach (var (key, value) in norms)
        {
            float expected = key.EndsWith(".weight") ? 1f : 0f;
            Assert.True(value.eq(expected).all().item<bool>(), key);
        }
    }

    [Fact]
    public void Output_depends_on_the_timestep()
    {
        manual_seed(1);
        using var model = new FashionMnistUNet();
        using var images = randn(1, 1, 28, 28);
        using var early = model.forward(images, tensor(new long[] { 0 }));
        using var late = model.forward(images, tensor(new long[] { 299 }));
        Assert.False(early.allclose(late));
    }
}

/// <summary>The conditional variant of the tutorial's model (specs/fashion-mnist-conditional.yaml).</summary>
public class FashionMnistConditionalUNetTests
{
    [Fact]
    public void State_dict_is_the_tutorial_model_plus_one_class_embedding_after_the_time_mlp()
    {
        using var plain = new FashionMnistUNet();
        using var conditional = new FashionMnistConditionalUNet();
        var plainKeys = plain.state_dict().Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]").ToList();
        var keys = conditional.state_dict().Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]").ToList();
        int afterTime = plainKeys.IndexOf("time_mlp.3.bias [112]") + 1;
        plainKeys.Insert(afterTime, "class_emb.weight [11, 112]"); // ten classes and the null class, time embedding width 4 x 28
        Assert.Equal(plainKeys, keys);
        Assert.Equal(FashionMnistConditionalUNet.ParameterCount, conditional.parameters().Sum(p => p.numel()));
        Assert.Equal(FashionMnistUNet.ParameterCount + 11 * 112, FashionMnistConditionalUNet.ParameterCount);
    }

    [Fact]
    public void Labels_change_the_prediction_and_no_labels_means_the_null_class()
    {
        manual_seed(0);
        using var model = new FashionMnistConditionalUNet();
        model.eval();
        using var images = randn(2, 1, 28, 28);
        using var timesteps = tensor(new long[] { 100, 100 });
        using var sneaker = model.forward(images, timesteps, tensor(new long[] { 7, 7 }));
        using var bag = model.forward(images, timesteps, tensor(new long[] { 8, 8 }));
        using var none = model.forward(images, timesteps, tensor(new long[] { 10, 10 }));
        using var unlabelled = model.forward(images, timesteps);
        Assert.Equal(new long[] { 2, 1, 28, 28 }, sneaker.shape);
        Assert.True((sneaker - bag).abs().max().item<float>() > 1e-4f);
        Assert.Equal(0f, (none - unlabelled).abs().max().item<float>());
        var conditioning = ((Ddpm.Conditioning.IClassConditional)model).Conditioning;
        Assert.Equal((10, 0.1, 3.0, 10), (conditioning.Classes, conditioning.Dropout, conditioning.Guidance, conditioning.NullClass));
        Assert.Same(conditioning, ModelCatalog.Find("FashionMnistConditionalUNet")!.Conditioning);
    }
}
