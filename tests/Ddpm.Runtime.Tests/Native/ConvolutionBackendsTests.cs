using Ddpm.Blocks;
using Ddpm.Native;
using Ddpm.Runtime.Tests.Training;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Native;

/// <summary>
/// The kernel check (Native/ConvolutionBackends.cs, KernelCheck.cs, KernelCache.cs): oneDNN runs a model only when every one
/// of its convolution shapes agreed with float64 here and the model ran faster on it; anything else keeps libtorch's own.
/// </summary>
public sealed class ConvolutionBackendsTests : IDisposable
{
    private readonly string cacheRoot = Directory.CreateTempSubdirectory("ddpm-kernels-").FullName;
    private readonly bool? backendBefore;

    public ConvolutionBackendsTests()
    {
        OneDnn.Configure(); // loads libtorch
        backendBefore = OneDnn.UserEnabledConvolutionBackends()?.Mkldnn;
    }

    public void Dispose()
    {
        if (backendBefore is bool before) OneDnn.SetConvolutionBackend(before);
        Directory.Delete(cacheRoot, recursive: true);
    }

    private static readonly ConvolutionShape C28 = new(28, 28, 3, 1, 1, 1), C56 = new(56, 56, 3, 1, 1, 1), Final = new(28, 1, 1, 1, 0, 1);

    private static ConvolutionCheckResult Passed => new(true, 1e-7, 1e-7);
    private static ConvolutionCheckResult Failed => new(false, 1.7, 1e-7);

    private static void SkipUnlessAuto()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "libtorch's oneDNN switch is reached through its Linux symbols");
        Skip.If(OneDnn.CurrentMode != OneDnn.Mode.Auto, $"{OneDnn.EnvironmentVariable} overrides the check in this process");
    }

    [SkippableFact]
    public void A_shape_declared_wrong_keeps_the_model_on_libtorchs_own_kernels()
    {
        SkipUnlessAuto();
        OneDnn.Configure();
        OneDnn.SetConvolutionBackend(true);
        // oneDNN would be much faster, but one shape failed: the whole model runs on libtorch's own kernels.
        var choice = ConvolutionBackends.Apply([(C56, Passed), (C28, Failed), (Final, Passed)], new ModelTiming(1000, 100),
            ConvolutionBackends.Purpose.Training, checkSeconds: 0);
        Assert.False(choice.OneDnn);
        Assert.Equal([C28], choice.Failed);
        Assert.False(OneDnn.UserEnabledConvolutionBackends()!.Value.Mkldnn);
        Assert.Equal("convolutions: libtorch's own for all 3 shapes (oneDNN failed 1 of 3: 28 input channels; from the kernel cache)", choice.Line);
    }

    [SkippableFact]
    public void Where_every_shape_passes_and_oneDNN_is_faster_oneDNN_runs_the_model()
    {
        SkipUnlessAuto();
        OneDnn.Configure();
        var choice = ConvolutionBackends.Apply([(C56, Passed), (C28, Passed), (Final, Passed)], new ModelTiming(140, 100),
            ConvolutionBackends.Purpose.Sampling, checkSeconds: 0);
        Assert.True(choice.OneDnn);
        Assert.True(OneDnn.UserEnabledConvolutionBackends()!.Value.Mkldnn);
        Assert.StartsWith("convolutions: oneDNN for all 3 shapes (each agreed with float64; a sampling pass of 4 images: 140 ms own, 100 ms oneDNN", choice.Line);
    }

    [SkippableTheory]
    [InlineData(100, 100)] // equal
    [InlineData(104, 100)] // within the 5% a machine's noise can give
    [InlineData(80, 100)]  // slower
    public void OneDNN_that_passes_but_is_not_5_percent_faster_is_not_used(double ownMs, double oneDnnMs)
    {
        SkipUnlessAuto();
        OneDnn.Configure();
        var choice = ConvolutionBackends.Apply([(C28, Passed)], new ModelTiming(ownMs, oneDnnMs), ConvolutionBackends.Purpose.Training, 0);
        Assert.False(choice.OneDnn);
        Assert.False(OneDnn.UserEnabledConvolutionBackends()!.Value.Mkldnn);
        Assert.Contains("oneDNN agreed with float64 but was not 5% faster", choice.Line);
    }

    /// <summary>
    /// Why the choice is per model and not per layer: libtorch reads its oneDNN switch again when the backward pass runs, so
    /// the gradients of a convolution whose forward ran on oneDNN come from whatever the switch says at backward time. The
    /// two backends sum in different orders, so their weight gradients differ in the last bits, which shows which one ran.
    /// </summary>
    [SkippableFact]
    public void The_backward_pass_runs_on_the_backend_the_switch_names_when_it_runs()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "libtorch's oneDNN switch is reached through its Linux symbols");
        using var scope = NewDisposeScope();
        manual_seed(11);
        var x = randn(4, 28, 14, 14);
        var w = randn(28, 28, 3, 3) * 0.1;
        var upstream = randn(4, 28, 14, 14);
        Tensor WeightGradient(bool forwardOnOneDnn, bool backwardOnOneDnn)
        {
            var wi = w.detach().clone().requires_grad_(true);
            OneDnn.SetConvolutionBackend(forwardOnOneDnn);
            var y = nn.functional.conv2d(x, wi, padding: [1, 1]);
            OneDnn.SetConvolutionBackend(backwardOnOneDnn);
            y.backward([upstream]);
            return wi.grad!.detach().clone();
        }
        var own = WeightGradient(false, false);
        var oneDnn = WeightGradient(true, true);
        Skip.If(own.eq(oneDnn).all().item<bool>(), "both backends gave bit-identical gradients here, so which one ran cannot be told apart");
        Assert.True(WeightGradient(true, false).eq(own).all().item<bool>(), "forward on oneDNN, switch off at backward: libtorch's own gradient");
        Assert.True(WeightGradient(false, true).eq(oneDnn).all().item<bool>(), "forward on libtorch's own, switch on at backward: oneDNN's gradient");
    }

    [Fact]
    public void The_shapes_of_a_model_are_its_distinct_convolutions_with_their_padding()
    {
        using var model = new SmallTestUNet(seed: 1);
        var shapes = ConvolutionBackends.ShapesOf(model);
        Assert.Contains(new ConvolutionShape(1, 16, 3, 1, 1, 1), shapes); // init_conv (dim 16)
        Assert.Contains(new ConvolutionShape(16, 1, 1, 1, 0, 1), shapes); // final_conv
        Assert.Equal(shapes.Count, shapes.Distinct().Count());
        using var standardized = new WeightStandardizedConv2d(12, 20, 7, padding: 3);
        Assert.Equal([new ConvolutionShape(12, 20, 7, 1, 3, 1)], ConvolutionBackends.ShapesOf(standardized));
    }

    /// <summary>The real check on this machine: libtorch's own kernels agree with float64 on every shape, results are cached and reused.</summary>
    [SkippableFact]
    public void The_check_measures_every_shape_against_float64_and_caches_it()
    {
        SkipUnlessAuto();
        manual_seed(5);
        using var model = new SmallTestUNet(seed: 5);
        var first = ConvolutionBackends.Choose(model, ScalarType.Float32, imageSize: 8, channels: 1, ConvolutionBackends.Purpose.Training, cacheRoot);
        Assert.True(first.CheckSeconds > 0);
        var cache = KernelCache.Open(get_num_threads(), cacheRoot);
        Assert.True(File.Exists(cache.Path));
        foreach (var shape in first.Shapes)
        {
            var result = cache.Convolution(shape.Key(ScalarType.Float32));
            Assert.NotNull(result);
            Assert.InRange(result.OwnError, 0, KernelCheck.Float32Tolerance);
            Assert.Equal(result.OneDnnPassed, !first.Failed.Contains(shape));
        }
        Assert.Equal(first.OneDnn, OneDnn.UserEnabledConvolutionBackends()!.Value.Mkldnn);

        var second = ConvolutionBackends.Choose(model, ScalarType.Float32, 8, 1, ConvolutionBackends.Purpose.Training, cacheRoot);
        Assert.Equal(0, second.CheckSeconds);
        Assert.Equal(first.OneDnn, second.OneDnn);
        Assert.EndsWith("from the kernel cache)", second.Line);
    }

    [Fact]
    public void A_cache_file_that_cannot_be_read_or_was_made_under_other_settings_is_ignored()
    {
        var cache = KernelCache.Open(2, cacheRoot);
        Directory.CreateDirectory(Path.GetDirectoryName(cache.Path)!);
        File.WriteAllText(cache.Path, "{ not json");
        Assert.Null(KernelCache.Open(2, cacheRoot).MklVendorDispatch);

        cache.MklVendorDispatch = true;
        cache.SetConvolution(C28.Key(ScalarType.Float32), Failed);
        cache.Save();
        var reopened = KernelCache.Open(2, cacheRoot);
        Assert.True(reopened.MklVendorDispatch);
        Assert.Equal(Failed, reopened.Convolution(C28.Key(ScalarType.Float32)));
        Assert.Null(reopened.Convolution(C28.Key(ScalarType.BFloat16)));
        // Another thread count is another situation: another file, empty.
        Assert.NotEqual(cache.Path, KernelCache.Open(3, cacheRoot).Path);
        Assert.Null(KernelCache.Open(3, cacheRoot).MklVendorDispatch);
    }

    [Fact]
    public void An_infinite_error_is_kept_in_the_cache()
    {
        var cache = KernelCache.Open(2, cacheRoot);
        cache.SetConvolution("nan", new ConvolutionCheckResult(false, double.PositiveInfinity, 1e-7));
        cache.Save();
        Assert.Equal(double.PositiveInfinity, KernelCache.Open(2, cacheRoot).Convolution("nan")!.OneDnnError);
    }

    /// <summary>Whatever oneMKL code path this process chose (its full one on AMD, by MklDispatch), its products agree with float64.</summary>
    [Fact]
    public void Matrix_products_agree_with_float64_on_the_chosen_oneMKL_path()
    {
        OneDnn.Configure();
        Assert.InRange(KernelCheck.GemmError(), 0, KernelCheck.Float32Tolerance);
    }

    [SkippableFact]
    public void Each_backend_agrees_with_float64_on_the_channel_counts_oneDNN_once_got_wrong()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "libtorch's oneDNN switch is reached through its Linux symbols");
        OneDnn.Configure();
        foreach (int channels in new[] { 12, 28, 84 })
        {
            var shape = new ConvolutionShape(channels, 28, 3, 1, 1, 1);
            Assert.InRange(KernelCheck.ConvolutionError(shape, ScalarType.Float32, oneDnn: false), 0, KernelCheck.Float32Tolerance);
            // oneDNN's result is what it is on this machine: the check must report a number for it, finite or not.
            Assert.False(double.IsNaN(KernelCheck.ConvolutionError(shape, ScalarType.Float32, oneDnn: true)));
        }
    }
}
