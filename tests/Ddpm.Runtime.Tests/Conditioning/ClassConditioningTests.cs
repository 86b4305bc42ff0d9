using Ddpm.Conditioning;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Conditioning;

/// <summary>Label dropout, guidance, the sampling rule for conditional models, and labels flowing from the data.</summary>
public class ClassConditioningTests
{
    /// <summary>
    /// A conditional stand-in: its prediction is the label as a number in every pixel (the null class predicts -1), and it
    /// counts its calls and the batch sizes it saw.
    /// </summary>
    sealed class LabelEcho(int classes, double dropout = 0.1, double guidance = 1) : nn.Module<Tensor, Tensor, Tensor>("LabelEcho"), IClassConditional
    {
        public ClassConditioning Conditioning { get; } = new(classes, dropout, guidance);
        public List<long> Batches { get; } = new();

        public override Tensor forward(Tensor images, Tensor timesteps) => forward(images, timesteps, null);

        public Tensor forward(Tensor images, Tensor timesteps, Tensor? labels)
        {
            Batches.Add(images.shape[0]);
            using var scope = NewDisposeScope();
            labels ??= full(images.shape[0], classes, ScalarType.Int64);
            var value = where(labels == classes, full_like(labels, -1), labels).to(ScalarType.Float32).reshape(-1, 1, 1, 1);
            return (zeros_like(images) + value).MoveToOuterDisposeScope();
        }
    }

    [Fact]
    public void Dropout_replaces_the_declared_share_of_labels_with_the_null_class_and_keeps_the_rest()
    {
        var conditioning = new ClassConditioning(10, 0.1, 3);
        const int n = 200_000;
        using var labels = arange(n, ScalarType.Int64).remainder(10);
        using var generator = new Generator(7);
        using var dropped = conditioning.DropLabels(labels, generator);
        var before = labels.data<long>().ToArray();
        var after = dropped.data<long>().ToArray();
        int nulls = after.Count(l => l == 10);
        // Binomial(n, 0.1): standard deviation sqrt(n p (1 - p)) = 134; allow 5 of them.
        Assert.InRange(nulls, n / 10 - 670, n / 10 + 670);
        for (int i = 0; i < n; i++)
            Assert.True(after[i] == before[i] || after[i] == 10, $"label {i} became {after[i]}");
        // The same generator seed drops the same labels.
        using var again = conditioning.DropLabels(labels, new Generator(7));
        Assert.Equal(after, again.data<long>().ToArray());
    }

    [Fact]
    public void No_dropout_draws_nothing_and_changes_nothing()
    {
        var conditioning = new ClassConditioning(3, 0, 1);
        using var labels = tensor(new long[] { 0, 1, 2, 1 });
        using var generator = new Generator(1);
        using var state = generator.get_state();
        using var dropped = conditioning.DropLabels(labels, generator);
        Assert.Equal(new long[] { 0, 1, 2, 1 }, dropped.data<long>().ToArray());
        using var stateAfter = generator.get_state();
        Assert.True(state.eq(stateAfter).all().item<bool>());
    }

    [Theory]
    [InlineData(1.0, new float[] { 2, 0 })]          // the conditional prediction alone: one call at batch size B
    [InlineData(3.0, new float[] { 8, 2 })]          // -1 + 3 (2 - (-1)) = 8 and -1 + 3 (0 - (-1)) = 2
    [InlineData(0.0, new float[] { -1, -1 })]        // the null class alone
    [InlineData(0.5, new float[] { 0.5f, -0.5f })]   // -1 + 0.5 (2 + 1), -1 + 0.5 (0 + 1)
    public void Guidance_is_uncond_plus_scale_times_the_difference_from_one_batched_call(double scale, float[] expected)
    {
        using var model = new LabelEcho(classes: 3);
        using var labels = tensor(new long[] { 2, 0 });
        using var guided = new GuidedDenoiser(model, labels, scale);
        using var x = zeros(2, 1, 2, 2);
        using var t = tensor(new long[] { 5, 5 });
        using var output = guided.forward(x, t);
        Assert.Equal(expected, output.select(1, 0).select(1, 0).select(1, 0).data<float>().ToArray());
        // One model call per step whatever the scale: a doubled batch when guiding, the batch itself otherwise.
        Assert.Equal(new long[] { scale is 1.0 or 0.0 ? 2 : 4 }, model.Batches);
    }

    [Fact]
    public void A_conditional_model_refuses_to_sample_without_a_class_and_an_unconditional_one_refuses_a_class()
    {
        using var conditional = new LabelEcho(classes: 3);
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Linear, 10));
        var e = Assert.Throws<ArgumentException>(() => Sampling.Draw(conditional, diffusion, new long[] { 1, 1, 2, 2 }, 2, SamplerKind.Ddim, 2, 0, 0, 2));
        Assert.Equal("LabelEcho is class-conditional (3 classes): say which class to draw (a class name or index, 'all' for one row per class), " +
                     "or ask for the null class ('none') to draw unconditionally.", e.Message);

        var wrapped = new PlainModule();
        var f = Assert.Throws<ArgumentException>(() => Sampling.CheckCondition(wrapped, ClassCondition.Repeat(0, 2, 1), 2));
        Assert.Equal("PlainModule is not class-conditional: it takes no class.", f.Message);
        wrapped.Dispose();
    }

    sealed class PlainModule() : nn.Module<Tensor, Tensor, Tensor>("PlainModule")
    {
        public override Tensor forward(Tensor images, Tensor timesteps) => images.alias();
    }

    [Fact]
    public void Conditions_are_checked_against_the_model()
    {
        var conditioning = new ClassConditioning(3, 0, 1);
        Assert.Contains("2 class labels for 3 images", Assert.Throws<ArgumentException>(() => ClassCondition.Repeat(1, 2, 1).Check(conditioning, 3)).Message);
        Assert.Contains("Class label 4 is outside 0 .. 3", Assert.Throws<ArgumentException>(() => ClassCondition.Repeat(4, 2, 1).Check(conditioning, 2)).Message);
        Assert.Contains("never learned", Assert.Throws<ArgumentException>(() => ClassCondition.Repeat(1, 2, 3).Check(conditioning, 2)).Message);
        ClassCondition.Repeat(3, 2, 1).Check(conditioning, 2); // the null class is a label too
        Assert.Equal(new[] { 0, 0, 1, 1, 2, 2 }, ClassCondition.EachClass(3, 2, 1).Labels);
        Assert.Equal(new[] { 0, 1, 2, 0, 1 }, ClassCondition.Balanced(3, 5, 1).Labels);
    }

    [Fact]
    public void Conditional_sampling_draws_each_image_with_its_own_label_across_batches()
    {
        // With the label echo as an x_0 predictor at T = 1, DDIM's one step returns the predicted x_0 itself: the label.
        using var model = new LabelEcho(classes: 3);
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Linear, 1), new DiffusionOptions(Objective.X0));
        var condition = new ClassCondition(new[] { 0, 1, 2, 3, 2 }, 1);
        using var images = Sampling.Draw(model, diffusion, new long[] { 1, 1, 2, 2 }, 5, SamplerKind.Ddim, 1, 0, 0, batchSize: 2, condition: condition);
        Assert.Equal(new float[] { 0, 1, 2, -1, 2 }, images.select(1, 0).select(1, 0).select(1, 0).data<float>().ToArray());
        Assert.Equal(new long[] { 2, 2, 1 }, model.Batches);
    }

    [Fact]
    public void Synthetic_data_is_labelled_by_shape_and_batch_labels_follow_the_shuffle()
    {
        var data = Datasets.Synthetic(1, 8, count: 64);
        Assert.Equal(Datasets.SyntheticClassNames, data.ClassNames);
        Assert.Equal(64, data.Labels!.Length);
        Assert.Equal(new[] { 0, 1, 2 }, data.Labels.Distinct().Order().Select(l => (int)l));
        // Mark each image with its label in pixel 0, then check every batch's labels against its pixels.
        var marked = (byte[])data.Pixels.Clone();
        for (int i = 0; i < data.Count; i++) marked[i * data.ImageBytes] = (byte)(100 + 50 * data.Labels[i]);
        var set = new ImageSet(marked, data.Count, 1, 8, 8).WithLabels(data.Labels, data.ClassNames!);
        var loader = new BatchLoader(set, batchSize: 8, randomFlip: false, seed: 5);
        Assert.True(loader.HasLabels);
        for (int epoch = 0; epoch < 2; epoch++)
            for (int b = 0; b < loader.BatchesPerEpoch; b++)
            {
                var pixels = loader.MakeBatch(epoch, b);
                var labels = loader.BatchLabels(epoch, b);
                for (int i = 0; i < 8; i++)
                    Assert.Equal(100 + 50 * labels[i], (int)Math.Round((pixels[i * 64] + 1) * 255 / 2));
            }
    }

    [Fact]
    public void Labels_must_fit_the_images_and_the_names()
    {
        var images = new ImageSet(new byte[4], 4, 1, 1, 1);
        Assert.Contains("3 labels for 4 images", Assert.Throws<ArgumentException>(() => images.WithLabels(new byte[3], new[] { "a", "b" })).Message);
        Assert.Contains("Label 2 found, but there are 2 class names", Assert.Throws<ArgumentException>(() => images.WithLabels(new byte[] { 0, 1, 2, 0 }, new[] { "a", "b" })).Message);
        Assert.Null(images.Labels);
        Assert.Throws<InvalidOperationException>(() => new BatchLoader(images, 2, false, 0).BatchLabels(0, 0));
    }

    [Fact]
    public void An_image_folder_with_one_subfolder_per_class_is_labelled_by_sorted_folder_names()
    {
        string root = Path.Combine(Path.GetTempPath(), "ddpm-classes-" + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var (folder, file) in new[] { ("zebra", "a.png"), ("ant", "b.png"), ("ant", "c.png"), ("moth", "d.png") })
            {
                Directory.CreateDirectory(Path.Combine(root, folder));
                using var image = zeros(1, 4, 4);
                Ddpm.Imaging.ImageGrid.SavePng(image.unsqueeze(0), Path.Combine(root, folder, file), columns: 1, scale: 1);
            }
            var set = ImageFolder.Load(root, 4, channels: 1);
            Assert.Equal(new[] { "ant", "moth", "zebra" }, set.ClassNames);
            // Files in path order: ant/b, ant/c, moth/d, zebra/a.
            Assert.Equal(new byte[] { 0, 0, 1, 2 }, set.Labels);

            File.Copy(Path.Combine(root, "ant", "b.png"), Path.Combine(root, "top.png"));
            Assert.Null(ImageFolder.Load(root, 4, channels: 1).Labels); // an image outside the class folders: unlabelled
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
