using System.IO.Compression;
using System.Text;
using Ddpm.Interop;

namespace Ddpm.Runtime.Tests.Interop;

/// <summary>
/// PyTorch files written the way torch.save writes them, byte by byte (no Python needed): tensors that view part of a
/// larger storage (an offset, transposed strides, several sharing one storage) read element for element; a view past its
/// storage and a top-level list are one error that says what was found.
/// </summary>
public sealed class PyTorchViewTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-ptview-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>Pickle protocol 2 opcodes, as torch.save emits them.</summary>
    private sealed class Pickle
    {
        private readonly MemoryStream bytes = new();

        public Pickle() => Op(0x80, 2); // PROTO 2

        public Pickle Op(params byte[] codes)
        {
            bytes.Write(codes);
            return this;
        }

        public Pickle Str(string text) // BINUNICODE
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(text);
            Op((byte)'X').Op(BitConverter.GetBytes(utf8.Length));
            return Op(utf8);
        }

        public Pickle Int(int value) => Op((byte)'J').Op(BitConverter.GetBytes(value)); // BININT

        public Pickle Global(string module, string name) => Op(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

        public Pickle Tuple(params int[] values)
        {
            Op((byte)'(');
            foreach (int v in values) Int(v);
            return Op((byte)'t');
        }

        public Pickle OrderedDict() => Global("collections", "OrderedDict").Op((byte)')', (byte)'R');

        /// <summary>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) over a FloatStorage.</summary>
        public Pickle Tensor(string key, int storageElements, int offset, int[] size, int[] stride)
        {
            Global("torch._utils", "_rebuild_tensor_v2").Op((byte)'(');
            Op((byte)'(').Str("storage").Global("torch", "FloatStorage").Str(key).Str("cpu").Int(storageElements).Op((byte)'t', (byte)'Q');
            Int(offset).Tuple(size).Tuple(stride).Op(0x89).OrderedDict(); // NEWFALSE, OrderedDict() of hooks
            return Op((byte)'t', (byte)'R');
        }

        public byte[] Bytes() => bytes.ToArray();
    }

    /// <summary>A torch.save zip: archive/data.pkl, byteorder, version and the float storages data/KEY.</summary>
    private string PyTorchZip(string name, byte[] pickle, params (string Key, float[] Values)[] storages)
    {
        string path = Path.Combine(root, name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Entry(string entry, byte[] content)
        {
            using var stream = zip.CreateEntry("archive/" + entry, CompressionLevel.NoCompression).Open();
            stream.Write(content);
        }
        Entry("data.pkl", pickle);
        Entry("byteorder", "little"u8.ToArray());
        foreach (var (key, values) in storages)
            Entry("data/" + key, values.SelectMany(BitConverter.GetBytes).ToArray());
        Entry("version", "3\n"u8.ToArray());
        return path;
    }

    private static readonly float[] Twelve = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();

    [Fact]
    public void Views_into_one_larger_storage_read_element_for_element()
    {
        // A state dict as a module whose parameters are slices saves it: an OrderedDict (with _metadata set by BUILD) of
        // three tensors that all view storage 0, which holds 0, 1, ..., 11.
        var pickle = new Pickle().OrderedDict().Op((byte)'(')
            .Str("offset").Tensor("0", 12, offset: 3, size: [4], stride: [1])
            .Str("transposed").Tensor("0", 12, offset: 0, size: [3, 4], stride: [1, 3])
            .Str("strided").Tensor("0", 12, offset: 1, size: [2, 2], stride: [4, 2])
            .Op((byte)'u')
            .Op((byte)'}', (byte)'(').Str("_metadata").OrderedDict().Op((byte)'u') // the state BUILD sets: {'_metadata': OrderedDict()}
            .Op((byte)'b', (byte)'.');
        string path = PyTorchZip("views.pt", pickle.Bytes(), ("0", Twelve));

        using var file = WeightFile.Read(path);
        Assert.Equal(new[] { "offset", "strided", "transposed" }, file.Tensors.Select(t => t.Name));
        var byName = file.Tensors.ToDictionary(t => t.Name, t => t.Value);
        Assert.Equal(new long[] { 4 }, byName["offset"].shape);
        Assert.Equal(new float[] { 3, 4, 5, 6 }, byName["offset"].data<float>().ToArray());
        // transposed[i, j] = storage[i + 3 j]: the transpose of the 4x3 matrix 0..11.
        Assert.Equal(new long[] { 3, 4 }, byName["transposed"].shape);
        Assert.Equal(new float[] { 0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11 }, byName["transposed"].data<float>().ToArray());
        // strided[i, j] = storage[1 + 4 i + 2 j].
        Assert.Equal(new long[] { 2, 2 }, byName["strided"].shape);
        Assert.Equal(new float[] { 1, 3, 5, 7 }, byName["strided"].data<float>().ToArray());
        // Each tensor owns its numbers: the shared storage is copied out, not aliased.
        Assert.All(file.Tensors, t => Assert.True(t.Value.is_contiguous(), t.Name));
        byName["offset"].add_(100);
        Assert.Equal(new float[] { 0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11 }, byName["transposed"].data<float>().ToArray());
        Assert.Equal(new float[] { 1, 3, 5, 7 }, byName["strided"].data<float>().ToArray());
    }

    [Fact]
    public void Parameters_and_two_storages_keep_their_own_numbers()
    {
        // _rebuild_parameter wraps a tensor as torch.save writes nn.Parameter; a plain dict, two storages.
        var pickle = new Pickle().Op((byte)'}', (byte)'(')
            .Str("a").Global("torch._utils", "_rebuild_parameter").Op((byte)'(')
                .Tensor("1", 3, offset: 0, size: [3], stride: [1]).Op(0x89).OrderedDict().Op((byte)'t', (byte)'R')
            .Str("b").Tensor("0", 12, offset: 11, size: [], stride: [])
            .Op((byte)'u', (byte)'.');
        string path = PyTorchZip("params.pt", pickle.Bytes(), ("0", Twelve), ("1", [-1f, 0.5f, 2f]));

        using var file = WeightFile.Read(path);
        Assert.Equal(new[] { "a", "b" }, file.Tensors.Select(t => t.Name));
        Assert.Equal(new float[] { -1f, 0.5f, 2f }, file.Tensors[0].Value.data<float>().ToArray());
        Assert.Empty(file.Tensors[1].Value.shape);
        Assert.Equal(11f, file.Tensors[1].Value.item<float>());
    }

    [Theory]
    [InlineData(10, new[] { 4 }, new[] { 1 }, "(Float32 [4], offset 10, strides [1]) that reaches past the 12 elements of its storage data/0.")]
    [InlineData(0, new[] { 4, 4 }, new[] { 1, 3 }, "(Float32 [4, 4], offset 0, strides [1, 3]) that reaches past the 12 elements of its storage data/0.")]
    [InlineData(0, new[] { 2 }, new[] { int.MaxValue }, "(Float32 [2], offset 0, strides [2147483647]) that reaches past the 12 elements of its storage data/0.")]
    [InlineData(-1, new[] { 2 }, new[] { 1 }, "(Float32 [2], offset -1, strides [1]) with a negative offset, size or stride.")]
    public void A_view_past_its_storage_names_the_tensor(int offset, int[] size, int[] stride, string problem)
    {
        var pickle = new Pickle().Op((byte)'}').Str("w").Tensor("0", 12, offset, size, stride).Op((byte)'s', (byte)'.');
        string path = PyTorchZip("outside.pt", pickle.Bytes(), ("0", Twelve));
        var error = Assert.Throws<InvalidDataException>(() => WeightFile.Read(path));
        Assert.Equal($"{path} has tensor 'w' {problem}", error.Message);
    }

    [Fact]
    public void A_storage_shorter_than_its_pickle_says_is_named()
    {
        var pickle = new Pickle().Op((byte)'}').Str("w").Tensor("0", 16, 0, [4], [1]).Op((byte)'s', (byte)'.');
        string path = PyTorchZip("short.pt", pickle.Bytes(), ("0", Twelve));
        var error = Assert.Throws<InvalidDataException>(() => WeightFile.Read(path));
        Assert.Equal($"{path} has storage data/0 of 48 bytes, but its pickle says 16 elements of Float32 (4 bytes each).", error.Message);
    }

    [Fact]
    public void A_top_level_list_says_what_was_found_and_what_is_expected()
    {
        var pickle = new Pickle().Op((byte)']', (byte)'(')
            .Tensor("0", 12, 0, [12], [1]).Tensor("0", 12, 0, [12], [1])
            .Op((byte)'e', (byte)'.');
        string path = PyTorchZip("list.pt", pickle.Bytes(), ("0", Twelve));
        var error = Assert.Throws<InvalidDataException>(() => WeightFile.Read(path));
        Assert.Equal($"{path} holds a list of 2 items at the top level, not a dict of tensors: ddpm reads a state dict saved by torch.save(model.state_dict(), path).",
                     error.Message);
    }

    [Fact]
    public void A_checkpoint_dict_around_the_state_dict_names_the_entry_that_is_no_tensor()
    {
        var pickle = new Pickle().Op((byte)'}', (byte)'(')
            .Str("epoch").Int(3)
            .Str("state_dict").Op((byte)'}').Str("w").Tensor("0", 12, 0, [12], [1]).Op((byte)'s')
            .Op((byte)'u', (byte)'.');
        string path = PyTorchZip("wrapped.pt", pickle.Bytes(), ("0", Twelve));
        var error = Assert.Throws<InvalidDataException>(() => WeightFile.Read(path));
        Assert.Equal($"{path} holds 'epoch', which is not a tensor but an int: save the model's state_dict() alone (torch.save(model.state_dict(), path)).",
                     error.Message);
    }

    [Theory]
    [InlineData("torch.nn.modules.conv", "Conv2d", "holds a whole pickled model (torch.nn.modules.conv.Conv2d), not its state dict: save the weights with torch.save(model.state_dict(), path).")]
    [InlineData("torch._utils", "_rebuild_qtensor", "uses torch._utils._rebuild_qtensor, which ddpm does not read; ddpm reads dense tensors in plain containers.")]
    [InlineData("builtins", "eval", "is refused: this file asks to run code (builtins.eval); ddpm reads only tensors and plain containers.")]
    public void A_global_outside_the_state_dict_vocabulary_is_refused_when_named(string module, string name, string problem)
    {
        var pickle = new Pickle().Global(module, name).Op((byte)')', (byte)'R', (byte)'.');
        string path = PyTorchZip("global.pt", pickle.Bytes());
        var error = Assert.Throws<InvalidDataException>(() => WeightFile.Read(path));
        Assert.Equal($"{path} {problem}", error.Message);
    }
}
