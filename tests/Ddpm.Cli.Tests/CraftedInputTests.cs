using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Ddpm.Data;
using Ddpm.Onnx;
using Google.Protobuf;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Issue 26: the table of crafted inputs for the commands that arrived with evaluation, interop and ONNX (eval, export,
/// import, sample of an .onnx). Every file is made here (no Python). Each row asserts its exit code, exactly one
/// <c>ddpm:</c> line holding the row's words, no stack trace, and that nothing in the test's folder changed on disk.
/// </summary>
[Collection("cli")]
public sealed class CraftedInputTests(CraftedInputTests.Files files, Xunit.Abstractions.ITestOutputHelper log) : IClassFixture<CraftedInputTests.Files>
{
    /// <summary>A trained tiny checkpoint, its exports, a labelled data set, and the crafted files, all in one folder.</summary>
    public sealed class Files : IDisposable
    {
        public readonly string Root = Directory.CreateTempSubdirectory("ddpm-crafted-").FullName;
        public readonly string Checkpoint, Onnx, Safetensors, Dataset;

        public Files()
        {
            Checkpoint = OutputSafetyTests.TinyCheckpoint(Root, "good.ckpt");
            Onnx = Path.Combine(Root, "good.onnx");
            Safetensors = Path.Combine(Root, "good.safetensors");
            foreach (string export in new[] { Onnx, Safetensors })
            {
                var result = InProcessCli.Ddpm("export", Checkpoint, "--out", export);
                Assert.True(result.Code == 0, result.Err);
            }
            string folder = Path.Combine(Root, "shapes");
            Directory.CreateDirectory(folder);
            var (images, labels) = EvalCommandTests.Shapes(64, seed: 1);
            Idx.WriteImages(Path.Combine(folder, FashionMnist.TrainImagesFile), images);
            Idx.WriteLabels(Path.Combine(folder, FashionMnist.TrainLabelsFile), labels);
            Idx.WriteImages(Path.Combine(folder, FashionMnist.TestImagesFile), images);
            Idx.WriteLabels(Path.Combine(folder, FashionMnist.TestLabelsFile), labels);
            Dataset = "idx:" + folder;
            MakeCraftedFiles();
        }

        public string this[string name] => Path.Combine(Root, name);

        private void MakeCraftedFiles()
        {
            byte[] checkpoint = File.ReadAllBytes(Checkpoint);
            File.WriteAllBytes(this["truncated.ckpt"], checkpoint[..(checkpoint.Length / 2)]);
            File.WriteAllText(this["text.ckpt"], "not a checkpoint");
            File.Copy(Checkpoint, this["other.ckpt"]);

            byte[] onnx = File.ReadAllBytes(Onnx);
            File.WriteAllText(this["text.onnx"], "not a model");
            File.WriteAllBytes(this["truncated.onnx"], onnx[..(onnx.Length / 3)]);
            WithMetadata(onnx, "image-12000.onnx", OnnxMetadata.ImageSizeKey, "12000");
            WithMetadata(onnx, "image-60000.onnx", OnnxMetadata.ImageSizeKey, "60000");
            WithMetadata(onnx, "threshold-7.onnx", OnnxMetadata.DynamicThresholdKey, "7");
            WithMetadata(onnx, "channels-0.onnx", OnnxMetadata.ChannelsKey, "0");
            WithMetadata(onnx, "no-format.onnx", OnnxMetadata.FormatKey, null);

            byte[] safetensors = File.ReadAllBytes(Safetensors);
            var longHeader = (byte[])safetensors.Clone();
            BinaryPrimitives.WriteInt64LittleEndian(longHeader, safetensors.Length);
            File.WriteAllBytes(this["long-header.safetensors"], longHeader);
            var notJson = (byte[])safetensors.Clone();
            notJson[8] = (byte)'x';
            File.WriteAllBytes(this["not-json.safetensors"], notJson);
            File.WriteAllBytes(this["truncated.safetensors"], safetensors[..(safetensors.Length - 100)]);
            SafetensorsWithHeader("overflow.safetensors", """{"w":{"dtype":"F32","shape":[2147483648,2147483648,2147483648,1],"data_offsets":[0,4]}}""", 4);
            SafetensorsWithHeader("overlap.safetensors", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12);
            SafetensorsWithHeader("bad-dtype.safetensors", """{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}""", 4);
            var nan = (byte[])safetensors.Clone();
            BinaryPrimitives.WriteSingleLittleEndian(nan.AsSpan(nan.Length - 4), float.NaN); // the last value of the last tensor
            File.WriteAllBytes(this["nan.safetensors"], nan);

            File.WriteAllText(this["text.pt"], "not a zip");
            using (var zip = ZipFile.Open(this["no-pickle.pt"], ZipArchiveMode.Create))
                zip.CreateEntry("archive/version").Open().Dispose();
            using (var zip = ZipFile.Open(this["list.pt"], ZipArchiveMode.Create))
            using (var pickle = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open())
                pickle.Write([0x80, 2, (byte)']', (byte)'.']); // PROTO 2, EMPTY_LIST, STOP: a top-level list

            Npy.Write(this["good.npy"], [4, 8, 8], new byte[4 * 64]);
            byte[] npy = File.ReadAllBytes(this["good.npy"]);
            File.WriteAllBytes(this["truncated.npy"], npy[..(npy.Length - 10)]);
            File.WriteAllText(this["text.npy"], "not an array");
            NpyWithHeader("bomb.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000, 8, 8), }", 256);
            NpyWithHeader("object.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (4, 8, 8), }", 256);
            NpyWithHeader("negative.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (-4, 8, 8), }", 256);
            Npy.Write(this["nan.npy"], [4, 1, 8, 8], Enumerable.Repeat(float.NaN, 4 * 64).ToArray());
            File.WriteAllBytes(this["bomb.png"], HostileInputTests.BombPng(20000, 20000));
            File.WriteAllBytes(this["truncated.png"], HostileInputTests.BombPng(64, 64)[..40]);
            File.WriteAllBytes(this["one-pixel.png"], HostileInputTests.BombPng(1, 1));
            Directory.CreateDirectory(this["empty-folder"]);
        }

        private void WithMetadata(byte[] onnx, string name, string key, string? value)
        {
            var model = global::Onnx.ModelProto.Parser.ParseFrom(onnx);
            var entry = model.MetadataProps.Single(p => p.Key == key);
            if (value is null) model.MetadataProps.Remove(entry);
            else entry.Value = value;
            File.WriteAllBytes(this[name], model.ToByteArray());
        }

        private void SafetensorsWithHeader(string name, string header, int dataBytes)
        {
            byte[] json = Encoding.UTF8.GetBytes(header);
            var prefix = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(prefix, json.Length);
            File.WriteAllBytes(this[name], [.. prefix, .. json, .. new byte[dataBytes]]);
        }

        private void NpyWithHeader(string name, string dict, int bodyBytes)
        {
            string header = dict.PadRight(((dict.Length + 11) / 64 + 1) * 64 - 11) + "\n";
            byte[] length = BitConverter.GetBytes((ushort)header.Length);
            File.WriteAllBytes(this[name], [0x93, .. "NUMPY"u8, 1, 0, .. length, .. Encoding.ASCII.GetBytes(header), .. new byte[bodyBytes]]);
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    /// <summary>One row: the arguments (with {name} standing for a file of the folder), the exit code and words of the one line.</summary>
    private static readonly Dictionary<string, (string Args, int Code, string Words)> Rows = new()
    {
        // eval: images to score and checkpoints
        ["eval npy without the magic"] = ("eval {text.npy} --dataset {dataset}", 2, "text.npy"),
        ["eval truncated npy"] = ("eval {truncated.npy} --dataset {dataset}", 2, "truncated.npy"),
        ["eval npy of a billion images"] = ("eval {bomb.npy} --dataset {dataset}", 2, "bomb.npy"),
        ["eval npy of objects"] = ("eval {object.npy} --dataset {dataset}", 2, "object.npy"),
        ["eval npy of negative shape"] = ("eval {negative.npy} --dataset {dataset}", 2, "negative.npy"),
        ["eval npy of NaN"] = ("eval {nan.npy} --dataset {dataset}", 2, "nan.npy"),
        ["eval PNG bomb"] = ("eval {bomb.png} --dataset {dataset}", 2, "bomb.png"),
        ["eval truncated PNG"] = ("eval {truncated.png} --dataset {dataset}", 2, "truncated.png"),
        ["eval one-pixel PNG"] = ("eval {one-pixel.png} --dataset {dataset}", 2, "one-pixel.png"),
        ["eval empty folder"] = ("eval {empty-folder} --dataset {dataset}", 2, "empty-folder"),
        ["eval an ONNX model"] = ("eval {good.onnx}", 2, "ddpm sample"),
        ["eval text checkpoint"] = ("eval {text.ckpt}", 1, "text.ckpt"),
        ["eval truncated checkpoint"] = ("eval {truncated.ckpt}", 1, "truncated.ckpt"),
        ["eval json over its input"] = ("eval {good.npy} --dataset {dataset} --json {good.npy}", 2, "--json"),
        ["eval json over a checkpoint"] = ("eval {good.npy} --dataset {dataset} --json {other.ckpt}", 2, "--json"),
        // export
        ["export text checkpoint"] = ("export {text.ckpt} --out {x.safetensors}", 1, "text.ckpt"),
        ["export truncated checkpoint"] = ("export {truncated.ckpt} --out {x.onnx}", 1, "truncated.ckpt"),
        ["export over itself"] = ("export {good.ckpt} --out {good.ckpt} --format pytorch", 2, "--out"),
        ["export over another checkpoint"] = ("export {good.ckpt} --out {other.ckpt} --format safetensors", 2, "--out"),
        ["export to an unwritable place"] = ("export {good.ckpt} --out /proc/x.onnx", 2, "--out"),
        // import
        ["import header longer than the file"] = ("import {long-header.safetensors} --model TinyUNet --out {x.ckpt}", 1, "long-header.safetensors"),
        ["import header not JSON"] = ("import {not-json.safetensors} --model TinyUNet --out {x.ckpt}", 1, "not-json.safetensors"),
        ["import truncated safetensors"] = ("import {truncated.safetensors} --model TinyUNet --out {x.ckpt}", 1, "truncated.safetensors"),
        ["import overflowing shape"] = ("import {overflow.safetensors} --model TinyUNet --out {x.ckpt}", 1, "overflow.safetensors"),
        ["import overlapping tensors"] = ("import {overlap.safetensors} --model TinyUNet --out {x.ckpt}", 1, "overlap.safetensors"),
        ["import unknown dtype"] = ("import {bad-dtype.safetensors} --model TinyUNet --out {x.ckpt}", 1, "bad-dtype.safetensors"),
        ["import NaN weight"] = ("import {nan.safetensors} --model TinyUNet --out {x.ckpt}", 1, "NaN"),
        ["import PyTorch file not a zip"] = ("import {text.pt} --model TinyUNet --out {x.ckpt}", 1, "text.pt"),
        ["import PyTorch zip without a pickle"] = ("import {no-pickle.pt} --model TinyUNet --out {x.ckpt}", 1, "without data.pkl"),
        ["import PyTorch list"] = ("import {list.pt} --model TinyUNet --out {x.ckpt}", 1, "holds a list of 0 items at the top level, not a dict of tensors"),
        ["import over its input"] = ("import {good.safetensors} --model TinyUNet --out {good.safetensors} --overwrite", 2, "--out"),
        ["import over a checkpoint without overwrite"] = ("import {good.safetensors} --model TinyUNet --out {other.ckpt}", 2, "--out"),
        // sample of an ONNX model
        ["sample text onnx"] = ("sample {text.onnx} --out {x.png}", 1, "text.onnx"),
        ["sample truncated onnx"] = ("sample {truncated.onnx} --out {x.png}", 1, "truncated.onnx"),
        ["sample onnx image size 12000"] = ("sample {image-12000.onnx} --out {x.png}", 1, "ddpm.image_size"),
        ["sample onnx image size 60000"] = ("sample {image-60000.onnx} --out {x.png}", 1, "ddpm.image_size"),
        ["sample onnx threshold 7"] = ("sample {threshold-7.onnx} --out {x.png}", 1, "ddpm.dynamic_threshold"),
        ["sample onnx channels 0"] = ("sample {channels-0.onnx} --out {x.png}", 1, "ddpm.channels"),
        ["sample onnx without the format key"] = ("sample {no-format.onnx} --out {x.png}", 1, "not one ddpm export wrote"),
        ["sample onnx over itself"] = ("sample {good.onnx} --out {good.onnx}", 2, "--out"),
        ["sample onnx over a checkpoint"] = ("sample {good.onnx} --out {other.ckpt}", 2, "--out"),
    };

    public static TheoryData<string> RowNames() => [.. Rows.Keys];

    [Fact]
    public void The_table_covers_eval_export_import_and_sample_of_onnx()
    {
        var commands = Rows.Values.Select(r => r.Args.Split(' ')[0] + (r.Args.Contains(".onnx} --out", StringComparison.Ordinal) ? " onnx" : "")).ToHashSet();
        Assert.Superset(new HashSet<string> { "eval", "export", "import", "sample onnx" }, commands);
    }

    [Theory]
    [MemberData(nameof(RowNames))]
    public void A_crafted_input_is_one_line_with_its_exit_code_and_changes_nothing_on_disk(string row)
    {
        var (template, code, words) = Rows[row];
        string[] args = template.Split(' ').Select(Resolve).ToArray();
        var before = Snapshot(files.Root);

        var (exit, _, error) = InProcessCli.Ddpm(args);

        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        log.WriteLine(error.Replace(files.Root, "<folder>"));
        Assert.True(exit == code, $"exit code {exit}, expected {code}; stderr: {error}");
        Assert.True(lines.Length == 1 || (lines.Length == 2 && lines[1] == "Run 'ddpm --help' for usage."), $"stderr: {error}");
        Assert.StartsWith("ddpm: ", lines[0]);
        Assert.Contains(words, lines[0]);
        Assert.DoesNotContain("   at ", error);
        Assert.DoesNotContain("Exception", lines[0]);
        Assert.Equal(before, Snapshot(files.Root));
    }

    private string Resolve(string token) => token switch
    {
        "{dataset}" => files.Dataset,
        ['{', .. var name, '}'] => files[name],
        _ => token,
    };

    /// <summary>Every file under the folder with its SHA-256, and every folder.</summary>
    private static string Snapshot(string root) =>
        string.Join("\n", Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => Directory.Exists(p) ? p + "/" : $"{p} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(p)))}"));
}
