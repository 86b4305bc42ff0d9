using Ddpm.Data;
using Ddpm.Onnx;
using Ddpm.Specs;
using Ddpm.Training;
using Google.Protobuf;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Cli.Tests;

/// <summary>`ddpm export --format onnx` and `ddpm sample model.onnx`: the checkpoint's model on ONNX Runtime.</summary>
[Collection("cli")]
public sealed class OnnxCliTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-onnx-cli-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static (int Code, string Out, string Err) Ddpm(params string[] args) => InProcessCli.Ddpm(args);

    private string TrainedCheckpoint()
    {
        using var model = DiffusionModel.Create<TinyUNet>(seed: 3);
        model.Train(Datasets.Synthetic(1, 8, count: 32),
                    new TrainingSpec { Dataset = "synthetic", BatchSize = 8, Steps = 3, EmaDecay = 0.5, Seed = 5 });
        string path = Path.Combine(root, "trained.ckpt");
        model.Save(path);
        return path;
    }

    [Fact]
    public void Export_to_onnx_then_sample_it_computes_what_the_checkpoint_computes()
    {
        string checkpoint = TrainedCheckpoint();
        string onnx = Path.Combine(root, "out", "tiny.onnx");
        var (code, output, error) = Ddpm("export", checkpoint, "--format", "onnx", "--out", onnx);
        Assert.True(code == 0, error);
        Assert.Contains("the EMA weights of TinyUNet at step 3", output);
        Assert.False(File.Exists(onnx + ".yaml")); // the settings are in the file's metadata
        Assert.Empty(Directory.EnumerateFiles(root, "*.tmp", SearchOption.AllDirectories));

        // The file's network is the checkpoint's sampling network: same output within float32 kernel differences.
        using (var torchModel = DiffusionModel.Load(checkpoint))
        using (var onnxModel = OnnxDiffusionModel.Load(onnx))
        using (var scope = NewDisposeScope())
        {
            manual_seed(4);
            var x = randn(3, 1, 8, 8);
            long[] t = { 0, 9, 19 };
            using var noGrad = no_grad();
            var expected = torchModel.Module.forward(x, tensor(t)).data<float>().ToArray();
            var actual = onnxModel.Predict(x.data<float>().ToArray(), t);
            double diff = expected.Zip(actual, (a, b) => Math.Abs((double)a - b)).Max();
            log.WriteLine($"TinyUNet checkpoint vs its ONNX export: max abs diff {diff:E2}");
            Assert.True(diff <= 1e-4, $"max abs diff {diff}");
            using var saved = Checkpoint.Load(checkpoint);
            Assert.Equal("EMA", onnxModel.Metadata["ddpm.weights"]);
            Assert.Equal("3", onnxModel.Metadata["ddpm.step"]);
            Assert.Equal(saved.SpecText, onnxModel.Metadata["ddpm.config"]);
            Assert.Equal(20, onnxModel.Schedule.Timesteps);
        }

        // The extension alone selects ONNX; --raw exports the trained weights.
        string raw = Path.Combine(root, "raw.onnx");
        (code, output, error) = Ddpm("export", checkpoint, "--raw", "--out", raw);
        Assert.True(code == 0, error);
        Assert.Contains("the raw weights of TinyUNet", output);

        string png = Path.Combine(root, "grid.png");
        (code, output, error) = Ddpm("sample", onnx, "--sampler", "ddim", "--steps", "5", "--count", "4", "--out", png);
        Assert.True(code == 0, error);
        Assert.Contains("4 images of TinyUNet", output);
        Assert.Contains("ONNX Runtime", output);
        Assert.True(new FileInfo(png).Length > 0);
        // Without --out: <model>-samples.png beside the model.
        (code, _, error) = Ddpm("sample", raw, "--sampler", "dpmpp-2m", "--steps", "3", "--count", "2");
        Assert.True(code == 0, error);
        Assert.True(File.Exists(Path.Combine(root, "raw-samples.png")));
        // An unconditional model takes no class (before, ONNX sampling ignored --class).
        (code, _, error) = Ddpm("sample", raw, "--class", "1", "--count", "2");
        Assert.Equal(2, code);
        Assert.Contains("TinyUNet is not class-conditional: --class and --guidance do not apply to it.", error);
    }

    [Fact]
    public void Bad_onnx_input_gets_one_clear_error()
    {
        // A format that contradicts the extension is a usage error, either way round.
        var (code, _, error) = Ddpm("export", "x.ckpt", "--format", "onnx", "--out", Path.Combine(root, "x.pt"));
        Assert.Equal(2, code);
        Assert.Contains("names a PyTorch file, but --format is onnx", error);
        (code, _, error) = Ddpm("export", "x.ckpt", "--format", "safetensors", "--out", Path.Combine(root, "x.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("names an ONNX file, but --format is safetensors", error);
        (code, _, error) = Ddpm("export", "x.ckpt", "--format", "tflite", "--out", Path.Combine(root, "x.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("--format must be safetensors, pytorch or onnx", error);

        // Not a checkpoint.
        string notCheckpoint = Path.Combine(root, "garbage.ckpt");
        File.WriteAllText(notCheckpoint, "not a checkpoint");
        (code, _, error) = Ddpm("export", notCheckpoint, "--out", Path.Combine(root, "g.onnx"));
        Assert.Equal(1, code);
        Assert.Contains("garbage.ckpt", error);
        Assert.False(File.Exists(Path.Combine(root, "g.onnx")));

        // Not an ONNX model; an ONNX model that ddpm export did not write; a missing one.
        string notOnnx = Path.Combine(root, "garbage.onnx");
        File.WriteAllText(notOnnx, "not a model");
        (code, _, error) = Ddpm("sample", notOnnx, "--out", Path.Combine(root, "a.png"));
        Assert.Equal(1, code);
        Assert.Contains("ONNX Runtime cannot load it as a model", error);

        string foreign = Path.Combine(root, "identity.onnx");
        File.WriteAllBytes(foreign, IdentityModel().ToByteArray());
        (code, _, error) = Ddpm("sample", foreign, "--out", Path.Combine(root, "b.png"));
        Assert.Equal(1, code);
        Assert.Contains("not one ddpm export wrote", error);

        (code, _, error) = Ddpm("sample", Path.Combine(root, "missing.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("does not exist", error);

        // Options of checkpoints only.
        (code, _, error) = Ddpm("sample", foreign, "--device", "cpu", "--no-ema");
        Assert.Equal(2, code);
        Assert.Contains("--no-ema, --device apply to checkpoints, not to an ONNX model", error);
    }

    /// <summary>A valid ONNX model (y = x) with no Ddpm metadata.</summary>
    private static global::Onnx.ModelProto IdentityModel()
    {
        var graph = new global::Onnx.GraphProto { Name = "identity" };
        var node = new global::Onnx.NodeProto { OpType = "Identity", Name = "id" };
        node.Input.Add("x");
        node.Output.Add("y");
        graph.Node.Add(node);
        global::Onnx.ValueInfoProto Value(string name)
        {
            var shape = new global::Onnx.TensorShapeProto();
            shape.Dim.Add(new global::Onnx.TensorShapeProto.Types.Dimension { DimValue = 1 });
            return new global::Onnx.ValueInfoProto
            {
                Name = name,
                Type = new global::Onnx.TypeProto { TensorType = new global::Onnx.TypeProto.Types.Tensor { ElemType = (int)global::Onnx.TensorProto.Types.DataType.Float, Shape = shape } },
            };
        }
        graph.Input.Add(Value("x"));
        graph.Output.Add(Value("y"));
        var model = new global::Onnx.ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new global::Onnx.OperatorSetIdProto { Domain = "", Version = 17 });
        return model;
    }
}
