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
