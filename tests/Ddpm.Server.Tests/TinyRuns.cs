using System.Globalization;
using System.Security.Cryptography;
using Ddpm.Cli.Tests;
using Ddpm.Data;
using Ddpm.Models;
using Ddpm.Server;
using Ddpm.Training;
using Ddpm.Specs;

namespace Ddpm.Server.Tests;

/// <summary>
/// A runs folder made by the tests: run "tiny" (TinyUNet, 2 steps, EMA) with the files ddpm train writes, its export
/// tiny/model.onnx, run "cond" (TinyConditionalUNet), and beside the folder an "outside" folder that symbolic links inside
/// point to (runs/linked, runs/evil.onnx, tiny/samples/step-000099.png).
/// </summary>
public sealed class TinyRuns : IDisposable
{
    public TinyRuns()
    {
        Root = Directory.CreateTempSubdirectory("ddpm-serve-tests-").FullName;
        Runs = Path.Combine(Root, "runs");
        Tiny = MakeRun<TinyUNet>(Runs, "tiny", "TinyUNet");
        Conditional = MakeRun<TinyConditionalUNet>(Runs, "cond", "TinyConditionalUNet");
        Onnx = Path.Combine(Tiny, "model.onnx");
        Ddpm.Interop.OnnxExport.Export(Path.Combine(Tiny, "checkpoints", "last.ckpt"), Onnx);

        string outside = Path.Combine(Root, "outside");
        Directory.CreateDirectory(Path.Combine(outside, "outrun", "checkpoints"));
        File.Copy(Path.Combine(Tiny, "config.yaml"), Path.Combine(outside, "outrun", "config.yaml"));
        File.Copy(Path.Combine(Tiny, "checkpoints", "last.ckpt"), Path.Combine(outside, "outrun", "checkpoints", "last.ckpt"));
        File.Copy(Onnx, Path.Combine(outside, "secret.onnx"));
        File.WriteAllText(Path.Combine(outside, "secret.png"), "not for the server");
        Directory.CreateSymbolicLink(Path.Combine(Runs, "linked"), Path.Combine(outside, "outrun"));
        File.CreateSymbolicLink(Path.Combine(Runs, "evil.onnx"), Path.Combine(outside, "secret.onnx"));
        File.CreateSymbolicLink(Path.Combine(Tiny, "samples", "step-000099.png"), Path.Combine(outside, "secret.png"));
    }

    public string Root { get; }
    public string Runs { get; }
    public string Tiny { get; }
    public string Conditional { get; }
    public string Onnx { get; }

    /// <summary>The test's limit of images per request.</summary>
    public const int MaxCount = 4096;

    /// <summary>
    /// Makes run <paramref name="name"/> in <paramref name="runs"/> with the files ddpm train writes (trained 2 steps; its
    /// config.yaml asks for <paramref name="plannedSteps"/>); returns its folder.
    /// </summary>
    internal static string MakeRun<TModel>(string runs, string name, string model, int plannedSteps = 2) where TModel : TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>
    {
        string folder = Path.Combine(runs, name);
        Directory.CreateDirectory(Path.Combine(folder, "samples"));
        static TrainingSpec Spec(int steps) => new() { Dataset = "synthetic", BatchSize = 8, Steps = steps, EmaDecay = 0.5, Seed = 5 };
        var training = Spec(2);
        using (var trained = DiffusionModel.Create<TModel>(seed: 3))
        {
            trained.Train(Datasets.Synthetic(1, 8, count: 16), training);
            trained.Save(Path.Combine(folder, "checkpoints", "last.ckpt"));
            var condition = trained.Conditioning is null ? null : trained.Classes("all", 3);
            trained.SampleGrid(Path.Combine(folder, "samples", "step-000002.png"), count: condition?.Labels.Count ?? 4, steps: 5, condition: condition);
        }
        File.WriteAllText(Path.Combine(folder, "config.yaml"), RunConfig.Write(ModelCatalog.Find(model)!, Spec(plannedSteps), "cpu", "test"));
        File.WriteAllText(Path.Combine(folder, "loss.csv"), "step,loss,lr,grad_norm\n1,0.5,0.001,1.5\n2,0.25,0.001,1.25\n");
        File.WriteAllText(Path.Combine(folder, "metrics.csv"),
            "step,weights,samples,fid,kid_mean,kid_std,precision,recall,class_entropy_bits,floor_fid,floor_kid_mean,floor_precision,floor_recall\n" +
            "1,ema,64,120.5,0.25,0.01,0.5,0.25,1,10,0.01,0.9,0.9\n1,raw,64,130.25,0.3,0.01,0.4,0.2,1,10,0.01,0.9,0.9\n" +
            "2,ema,64,98.75,0.2,0.01,0.6,0.3,1,10,0.01,0.9,0.9\n2,raw,64,110,0.22,0.01,0.55,0.28,1,10,0.01,0.9,0.9\n");
        File.WriteAllText(Path.Combine(folder, "log.txt"), "2026-01-01 00:00:00 training 2 steps\n");
        return folder;
    }

    /// <summary>Every file under the runs folder with its SHA-256 (links not followed), to show nothing was written there.</summary>
    public Dictionary<string, string> Snapshot() =>
        Directory.EnumerateFiles(Runs, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
                 .ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    public static async Task<DdpmServer> Start(string runs, int workers = 2, int queue = 2, string? output = null) =>
        await DdpmServer.StartAsync(new ServerOptions { RunsFolder = runs, Port = 0, MaxCount = MaxCount, Workers = workers, QueueLength = queue, OutputFolder = output });

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    public static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
