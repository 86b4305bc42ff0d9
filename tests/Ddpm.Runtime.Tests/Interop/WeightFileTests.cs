using System.Buffers.Binary;
using System.Text;
using Ddpm.Interop;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Interop;

/// <summary>Safetensors and PyTorch state-dict files: what is written reads back bit for bit; broken files are one clear error.</summary>
public sealed class WeightFileTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-weights-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>One tensor of each dtype a state dict may hold, including a scalar and an empty one.</summary>
    private static List<(string Name, Tensor Value)> Mixed()
    {
        var generator = new TorchSharp.torch.Generator(7);
        return new List<(string, Tensor)>
        {
            ("conv.weight", randn(new long[] { 4, 2, 3, 3 }, generator: generator)),
            ("norm.bias", randn(new long[] { 4 }, ScalarType.Float64, generator: generator)),
            ("half", randn(new long[] { 5 }, generator: generator).to(ScalarType.Float16)),
            ("bf16", randn(new long[] { 3, 2 }, generator: generator).to(ScalarType.BFloat16)),
            ("steps", tensor(new long[] { -1, long.MaxValue, 3 })),
            ("mask", tensor(new[] { true, false, true })),
            ("scalar", tensor(2.5f)),
            ("empty", zeros(0, 3)),
        };
    }

    private static void AssertSameBits(IReadOnlyList<(string Name, Tensor Value)> expected, IReadOnlyList<(string Name, Tensor Value)> actual)
    {
        Assert.Equal(expected.Select(p => p.Name), actual.Select(p => p.Name));
        for (int i = 0; i < expected.Count; i++)
        {
            var (name, want) = expected[i];
            var got = actual[i].Value;
            Assert.Equal(want.dtype, got.dtype);
            Assert.Equal(want.shape, got.shape);
            Assert.True(want.contiguous().bytes.SequenceEqual(got.contiguous().bytes), $"{name}: the bytes differ");
        }
    }

    [Fact]
    public void Safetensors_round_trip_keeps_order_dtypes_shapes_bits_and_metadata()
    {
        using var scope = NewDisposeScope();
        var tensors = Mixed();
        string path = Path.Combine(root, "mixed.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode: yes\nand lines" };
        WeightFile.Write(path, WeightFormat.Safetensors, tensors, metadata);

        using var file = WeightFile.Read(path);
        Assert.Equal(WeightFormat.Safetensors, file.Format);
        AssertSameBits(tensors, file.Tensors);
        Assert.Equal(metadata, file.Metadata);
        // The header is padded so the data starts 8-byte aligned.
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path)) % 8);
        Assert.Equal(new[] { "mixed.safetensors" }, Directory.EnumerateFiles(root).Select(Path.GetFileName));
    }

    [Fact]
    public void PyTorch_round_trip_keeps_every_tensor_bit_for_bit()
    {
        using var scope = NewDisposeScope();
        var tensors = Mixed();
        string path = Path.Combine(root, "mixed.pt");
        WeightFile.Write(path, WeightFormat.PyTorch, tensors);

        using var file = WeightFile.Read(path);
        Assert.Equal(WeightFormat.PyTorch, file.Format);
        Assert.Empty(file.Metadata);
        AssertSameBits(tensors.OrderBy(p => p.Name, StringComparer.Ordinal).ToList(), file.Tensors);
    }

    [Theory]
    [InlineData("a.safetensors", WeightFormat.Safetensors)]
    [InlineData("A.SAFETENSORS", WeightFormat.Safetensors)]
    [InlineData("model.pt", WeightFormat.PyTorch)]
    [InlineData("model.pth", WeightFormat.PyTorch)]
    [InlineData("pytorch_model.bin", WeightFormat.PyTorch)]
    [InlineData("model.onnx", null)]
    [InlineData("model", null)]
    public void The_extension_names_the_format(string path, WeightFormat? format) => Assert.Equal(format, WeightFile.FormatOf(path));

    private string WriteBytes(string name, byte[] bytes)
    {
        string path = Path.Combine(root, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Safetensors(string header, int dataBytes)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "has 4 bytes of tensor data, but its header describes 8")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "stored in 4 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6, "hole or overlap")]
    [InlineData("{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "of dtype C64, which Ddpm does not read")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape that is not a list of sizes")]
    [InlineData("{\"a\":{\"dtype\":\"F32\"}}", 0, "without dtype, shape and data_offsets")]
    [InlineData("{\"__metadata__\":{\"n\":1}}", 0, "that is not a string")]
    [InlineData("[1, 2]", 0, "not a JSON object")]
    [InlineData("{\"a\":", 0, "not JSON")]
    public void A_broken_safetensors_file_is_one_error_naming_the_file_and_the_problem(string header, int dataBytes, string problem)
    {
        string path = WriteBytes("broken.safetensors", Safetensors(header, dataBytes));
        var error = Assert.Throws<InvalidDataException>(() => WeightFile.Read(path));
        Assert.StartsWith(path + " ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void A_file_that_is_no_weights_file_is_one_error_for_each_format()
    {
        var tooLong = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(tooLong, 1UL << 40);
        Assert.Contains("promise a 1099511627776-byte header", Assert.Throws<InvalidDataException>(() => WeightFile.Read(WriteBytes("long.safetensors", tooLong))).Message);
        Assert.Contains("shorter than the 8-byte header", Assert.Throws<InvalidDataException>(() => WeightFile.Read(WriteBytes("short.safetensors", new byte[3]))).Message);
        Assert.Contains("is not a PyTorch state dict", Assert.Throws<InvalidDataException>(() => WeightFile.Read(WriteBytes("text.pt", Encoding.UTF8.GetBytes("not a zip")))).Message);
        Assert.Throws<FileNotFoundException>(() => WeightFile.Read(Path.Combine(root, "absent.pt")));
        Assert.Throws<ArgumentException>(() => WeightFile.Read(Path.Combine(root, "weights.onnx")));
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temporary_file()
    {
        string path = Path.Combine(root, "w.safetensors");
        File.WriteAllText(path, "old");
        using var scope = NewDisposeScope();
        var complex = new List<(string, Tensor)> { ("ok", zeros(2)), ("c", zeros(2, ScalarType.ComplexFloat32)) };
        Assert.Throws<NotSupportedException>(() => WeightFile.Write(path, WeightFormat.Safetensors, complex));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(new[] { "w.safetensors" }, Directory.EnumerateFiles(root).Select(Path.GetFileName));
        Assert.Throws<ArgumentException>(() => WeightFile.Write(path, WeightFormat.Safetensors, new List<(string, Tensor)> { ("a", zeros(1)), ("a", zeros(1)) }));
    }
}
