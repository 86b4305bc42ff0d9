using Ddpm.Interop;
using Ddpm.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Onnx.Tests;

/// <summary>
/// The exported graph computes what the TorchSharp module computes: ONNX Runtime's output within 1e-4 (max abs) of
/// TorchSharp's on random inputs at several timesteps, for every shipped model and an architecture with every kind of stage.
/// </summary>
[Collection("torch")] // manual_seed is process-wide
public sealed class OnnxExportTests(Xunit.Abstractions.ITestOutputHelper log)
{
    /// <summary>float32 kernels of two libraries: differently ordered sums, a few ulps per layer over 30-100 layers.</summary>
    private const double Tolerance = 1e-4;

    /// <summary>Every model of the library: specs/*.yaml (the class-conditional one among them) and the attributed TutorialUNet.</summary>
    public static TheoryData<string> ShippedModels() =>
        new(ModelCatalog.All.Where(e => e.CreateModel.Method.Module.Assembly == typeof(ModelLibrary).Assembly).Select(e => e.Name));

    [Fact]
    public void A_class_conditional_model_exports_with_a_labels_input_and_its_classes_in_the_metadata()
    {
        var entry = ModelCatalog.Find("FashionMnistConditionalUNet")!;
        using var model = entry.CreateModel();
        var proto = OnnxExport.Build(model, entry, null);
        Assert.Equal(new[] { "images", "timesteps", "labels" }, proto.Graph.Input.Select(i => i.Name));
        var labels = proto.Graph.Input[2].Type.TensorType;
        Assert.Equal((int)global::Onnx.TensorProto.Types.DataType.Int64, labels.ElemType);
        Assert.Equal("batch", labels.Shape.Dim.Single().DimParam);
        // The embedding table is Gathered by label and added to the time embedding, as the generated forward does.
        var gather = proto.Graph.Node.Single(n => n.OpType == "Gather");
        Assert.Equal(new[] { "class_emb.weight", "labels" }, gather.Input);
        var table = proto.Graph.Initializer.Single(i => i.Name == "class_emb.weight");
        Assert.Equal(new long[] { 11, 112 }, table.Dims); // 10 classes and the null class, by time_dim = 4 * dim (28)
        var metadata = proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("10", metadata["ddpm.classes"]);
        Assert.Equal("0.1", metadata["ddpm.class_dropout"]);
        Assert.Equal("3", metadata["ddpm.guidance"]);
        Assert.Equal("[\"T-shirt/top\",\"Trouser\",\"Pullover\",\"Dress\",\"Coat\",\"Sandal\",\"Shirt\",\"Sneaker\",\"Bag\",\"Ankle boot\"]",
                     metadata["ddpm.class_names"]);
    }

    [Fact]
    public void An_unconditional_export_has_no_labels_input_and_no_class_metadata()
    {
        var entry = ModelCatalog.Find("FashionMnistUNet")!;
        using var model = entry.CreateModel();
        var proto = OnnxExport.Build(model, entry, null);
        Assert.Equal(new[] { "images", "timesteps" }, proto.Graph.Input.Select(i => i.Name));
        Assert.DoesNotContain(proto.Graph.Node, n => n.OpType == "Gather");
        Assert.DoesNotContain(proto.MetadataProps, p => p.Key.StartsWith("ddpm.class", StringComparison.Ordinal) || p.Key == "ddpm.guidance");
    }

    [Theory]
    [MemberData(nameof(ShippedModels))]
    public void Onnx_runtime_matches_torchsharp_on_every_shipped_model(string name)
    {
        var entry = ModelCatalog.Find(name)!;
        // CIFAR-10's 27.9M parameters are slow on a CPU: batch 1 there, 2 elsewhere; timesteps from 0 to T - 1 either way.
        int batch = entry.ParameterCount > 10_000_000 ? 1 : 2;
        AssertMatches(entry, seed: 11, batch, new[] { 0, entry.Schedule.Timesteps / 2, entry.Schedule.Timesteps - 1 });
    }

    [Fact]
    public void Onnx_runtime_matches_torchsharp_on_every_kind_of_stage_and_any_batch()
    {
        var entry = TestModels.Mixed();
        AssertMatches(entry, seed: 5, batch: 3, new[] { 0, 17, 49 });
        AssertMatches(entry, seed: 6, batch: 1, new[] { 25 });
    }

    [Fact]
    public void Onnx_runtime_matches_torchsharp_for_every_class_and_the_null_class()
    {
        // Batch 4: labels 0, 1, 2 and 3 (the null class), each image at its own timestep.
        AssertMatches(TestModels.SmallConditional(EpsSchedule.Diffusion), seed: 8, batch: 4, new[] { 0, 30, 49 });
    }

    [Fact]
    public void The_exported_graph_has_the_declared_inputs_outputs_opset_and_folded_weights()
    {
        var entry = ModelCatalog.Find("FashionMnistUNet")!;
        using var model = TestModels.Seeded(entry, seed: 1);
        var proto = OnnxExport.Build(model, entry, null);
        var graph = proto.Graph;
        Assert.Equal(new[] { "images", "timesteps" }, graph.Input.Select(i => i.Name));
        Assert.Equal("prediction", Assert.Single(graph.Output).Name);
        var images = graph.Input[0].Type.TensorType;
        Assert.Equal((int)global::Onnx.TensorProto.Types.DataType.Float, images.ElemType);
        Assert.Equal("batch", images.Shape.Dim[0].DimParam);
        Assert.Equal(new long[] { 1, 28, 28 }, images.Shape.Dim.Skip(1).Select(d => d.DimValue));
        Assert.Equal((int)global::Onnx.TensorProto.Types.DataType.Int64, graph.Input[1].Type.TensorType.ElemType);
        Assert.Equal(17, Assert.Single(proto.OpsetImport).Version);
        // Only standard operators, and no GroupNorm or weight standardisation left to compute at run time.
        var ops = graph.Node.Select(n => n.OpType).ToHashSet();
        Assert.Subset(new HashSet<string> { "Conv", "Gemm", "InstanceNormalization", "Reshape", "Shape", "Mul", "Add", "Sigmoid", "Softmax",
                                            "MatMul", "Transpose", "Concat", "SpaceToDepth", "Resize", "Cast", "Unsqueeze", "Sin", "Cos", "Erf", "Identity" }, ops);
        Assert.DoesNotContain("ReduceMean", ops);
        // A folded kernel: (w - mean) / sqrt(var + eps) per output channel, so zero mean and variance var / (var + 1e-5).
        var folded = graph.Initializer.Single(i => i.Name == "downs.0.0.block1.proj.weight");
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(folded.RawData.Span).ToArray();
        Assert.Equal(new long[] { 28, 28, 3, 3 }, folded.Dims);
        static (double Mean, double Variance) Moments(IEnumerable<float> v)
        {
            var d = v.Select(x => (double)x).ToArray();
            double m = d.Average();
            return (m, d.Select(x => (x - m) * (x - m)).Average());
        }
        var raw = model.state_dict()["downs.0.0.block1.proj.weight"][0].flatten().data<float>().ToArray();
        var (_, rawVariance) = Moments(raw);
        var (mean, variance) = Moments(values.Take(28 * 9));
        Assert.InRange(Math.Abs(mean), 0, 1e-6);
        Assert.InRange(variance, rawVariance / (rawVariance + 1e-5) - 1e-5, rawVariance / (rawVariance + 1e-5) + 1e-5);
        Assert.InRange(rawVariance, 0, 0.01); // the raw kernel is far from standardised, so the check above means something
        // Every parameter of the model is in the graph once: the parameter count of the initializers, less the constants
        // the export adds (unit scales of the norms, shapes, frequencies, scalars), equals the model's.
        long parameters = graph.Initializer.Where(i => i.Name.EndsWith(".weight") || i.Name.EndsWith(".bias"))
                                           .Sum(i => i.Dims.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(entry.ParameterCount, parameters);
    }

    [Fact]
    public void The_metadata_carries_the_schedule_objective_and_shape()
    {
        var entry = ModelCatalog.Find("MnistCosineUNet")!;
        var metadata = OnnxExport.Metadata(entry).ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("ddpm-onnx-1", metadata["ddpm.format"]);
        Assert.Equal("MnistCosineUNet", metadata["ddpm.model"]);
        Assert.Equal("mnist-cosine.yaml", metadata["ddpm.spec"]);
        Assert.Equal("cosine", metadata["ddpm.schedule.kind"]);
        Assert.Equal("500", metadata["ddpm.schedule.timesteps"]);
        Assert.Equal("1", metadata["ddpm.channels"]);
        Assert.Equal("28", metadata["ddpm.image_size"]);
        Assert.Equal("eps", metadata["ddpm.objective"]);
        // Round-trip doubles: the reader gets the training program's float64 tables bit for bit.
        double[] betas = metadata["ddpm.schedule.betas"].Split(',').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(entry.Schedule.Betas, betas);
        Assert.Equal("linear", OnnxExport.ScheduleKindOf(ModelCatalog.Find("FashionMnistUNet")!.Schedule));
        Assert.Equal("quadratic", OnnxExport.ScheduleKindOf(X0ThresholdSchedule.Tables));
        Assert.Equal("cosine", OnnxExport.ScheduleKindOf(VClipSchedule.Tables));
        Assert.Equal("sigmoid", OnnxExport.ScheduleKindOf(Schedules.ScheduleMath.Tables(ScheduleKind.Sigmoid, 100, 1e-4, 0.03)));
        // Betas of no closed form.
        Assert.Equal("custom", OnnxExport.ScheduleKindOf(new Schedules.ScheduleTables(new[] { 0.01, 0.5, 0.02 })));
    }

    [Fact]
    public void A_module_that_is_not_a_generated_unet_is_refused_with_its_name()
    {
        using var model = new NotAUNet();
        var error = Assert.Throws<NotSupportedException>(() => OnnxExport.Build(model, TestModels.Mixed(), null));
        Assert.Contains("'head'", error.Message);
        Assert.Contains("not part of a generated U-Net", error.Message);
    }

    private sealed class NotAUNet : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear head = nn.Linear(2, 2);
        public NotAUNet() : base(nameof(NotAUNet)) => RegisterComponents();
        public override Tensor forward(Tensor x, Tensor t) => head.forward(x);
    }

    private void AssertMatches(ModelEntry entry, long seed, int batch, int[] timesteps)
    {
        using var model = TestModels.Seeded(entry, seed);
        using var file = TestModels.Export(model, entry);
        using var onnx = OnnxDiffusionModel.Load(file.Path);
        double worst = 0;
        foreach (int t in timesteps)
        {
            using var scope = NewDisposeScope();
            var x = randn(entry.BatchShape(batch));
            // Each image at its own timestep: t, and t shifted, so the batch dimension of the time embedding is exercised.
            var steps = Enumerable.Range(0, batch).Select(i => (long)((t + 7 * i) % entry.Schedule.Timesteps)).ToArray();
            // A conditional model: labels through every class and the null class (0, 1, ..., classes, 0, ...).
            long[]? labels = entry.Conditioning is { } c ? Enumerable.Range(0, batch).Select(i => (long)(i % (c.Classes + 1))).ToArray() : null;
            Tensor expected;
            using (no_grad())
                expected = model is Ddpm.Conditioning.IClassConditional conditional ? conditional.forward(x, tensor(steps), tensor(labels!)) : model.forward(x, tensor(steps));
            var actual = onnx.Predict(x.data<float>().ToArray(), steps, labels);
            var want = expected.data<float>().ToArray();
            Assert.Equal(want.Length, actual.Length);
            double diff = want.Zip(actual, (a, b) => Math.Abs((double)a - b)).Max();
            double scale = want.Max(v => Math.Abs((double)v));
            log.WriteLine($"{entry.Name} t={string.Join("/", steps)} batch {batch}: max |ORT - TorchSharp| = {diff:E2} (outputs up to {scale:F2})");
            Assert.True(diff <= Tolerance, $"{entry.Name} at t = {string.Join(", ", steps)}: max abs diff {diff:E3} > {Tolerance:E0}");
            worst = Math.Max(worst, diff);
        }
        log.WriteLine($"{entry.Name}: worst {worst:E2}, file {new FileInfo(file.Path).Length >> 10} KiB");
    }
}
