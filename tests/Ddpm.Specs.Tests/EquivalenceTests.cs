extern alias attributed;
using Ddpm.Models;
using TorchSharp;
using static TorchSharp.torch;
using AttributedSchedule = attributed::Ddpm.Models.FashionMnistSchedule;
using AttributedUNet = attributed::Ddpm.Models.FashionMnistUNet;

namespace Ddpm.Specs.Tests;

/// <summary>
/// specs/fashion-mnist.yaml compiled here against the attributed FashionMnistUNet of Ddpm.Models:
/// the same module (state-dict keys and shapes, parameter count, and with the same seed the same
/// weights and outputs) and the same schedule.
/// </summary>
public class EquivalenceTests
{
    [Fact]
    public void Same_state_dict_keys_shapes_and_parameter_count()
    {
        using var fromYaml = new FashionMnistUNet();
        using var fromAttributes = new AttributedUNet();
        Assert.Equal(AttributedUNet.ParameterCount, FashionMnistUNet.ParameterCount);
        Assert.Equal(fromAttributes.state_dict().Select(p => (p.Key, string.Join("x", p.Value.shape))),
                     fromYaml.state_dict().Select(p => (p.Key, string.Join("x", p.Value.shape))));
    }

    [Fact]
    public void Same_weights_and_outputs_from_the_same_seed()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var fromYaml = new FashionMnistUNet();
        manual_seed(7);
        using var fromAttributes = new AttributedUNet();
        manual_seed(8);
        var images = randn(3, 1, 28, 28);
        var timesteps = tensor(new long[] { 0, 150, 299 });
        fromYaml.eval();
        fromAttributes.eval();
        using var _ = no_grad();
        Assert.True(fromYaml.forward(images, timesteps).eq(fromAttributes.forward(images, timesteps)).all().item<bool>());
    }

    [Fact]
    public void Same_schedule()
    {
        Assert.Equal(AttributedSchedule.Fingerprint, FashionMnistSchedule.Fingerprint);
        Assert.Equal(AttributedSchedule.Tables.AlphasCumprod, FashionMnistSchedule.Tables.AlphasCumprod);
        Assert.Equal(AttributedSchedule.Tables.PosteriorVariance, FashionMnistSchedule.Tables.PosteriorVariance);
    }
}
