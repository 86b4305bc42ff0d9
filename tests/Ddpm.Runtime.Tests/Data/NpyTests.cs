using System.Buffers.Binary;
using System.Text;
using Ddpm.Data;

namespace Ddpm.Runtime.Tests.Data;

public class NpyTests
{
    /// <summary>A .npy file as numpy writes it: magic, version, header length, the header padded with spaces to a 64-byte boundary and '\n'.</summary>
    private static byte[] NpyBytes(string header, byte[] data, int major = 1)
    {
        int prefix = 6 + 2 + (major == 1 ? 2 : 4);
        int total = prefix + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";
        var bytes = new List<byte>();
        bytes.AddRange([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        if (major == 1) bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        else bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    [Fact]
    public void Uint8_round_trips_with_exact_values_and_shape()
    {
        using var dir = new TempFolder();
        var values = Enumerable.Range(0, 2 * 3 * 4 * 5).Select(i => (byte)(i * 53 % 256)).ToArray();
        Npy.Write(dir.File("a.npy"), [2, 3, 4, 5], values);

        var read = Npy.Read(dir.File("a.npy"));

        Assert.Equal("u1", read.DType);
        Assert.Equal(new long[] { 2, 3, 4, 5 }, read.Shape);
        Assert.Equal(values.Select(v => (double)v), read.Values);
        Assert.Equal(120, read.Count);
        // numpy's layout: the data starts on a 64-byte boundary, the header ends in '\n'.
        var bytes = File.ReadAllBytes(dir.File("a.npy"));
        const string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4, 5), }";
        Assert.Equal(128 + 120, bytes.Length); // 10 + 65 + 1 header bytes, padded to 128
        Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0 }, bytes[..10]);
        Assert.Equal(header + new string(' ', 128 - 10 - header.Length - 1) + "\n", Encoding.Latin1.GetString(bytes, 10, 118));
    }

    [Fact]
    public void Float32_round_trips_with_exact_values_including_specials()
    {
        using var dir = new TempFolder();
        float[] values = [0f, -0f, 1.5f, -1f, float.Epsilon, float.MaxValue, float.NaN, float.NegativeInfinity, 0.1f, 1e-30f, 3.3333333f, -2.75f];
        Npy.Write(dir.File("f.npy"), [3, 4], values);

        var read = Npy.Read(dir.File("f.npy"));

        Assert.Equal("f4", read.DType);
        Assert.Equal(new long[] { 3, 4 }, read.Shape);
        Assert.Equal(values.Length, read.Values.Length);
        for (int i = 0; i < values.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(values[i]), BitConverter.SingleToInt32Bits((float)read.Values[i]));
    }

    [Fact]
    public void One_dimensional_and_scalar_shapes_use_numpy_tuple_syntax()
    {
        using var dir = new TempFolder();
        Npy.Write(dir.File("v.npy"), [3], new byte[] { 7, 8, 9 });
        Assert.Contains("'shape': (3,)", File.ReadAllText(dir.File("v.npy"), Encoding.Latin1));
        Assert.Equal(new long[] { 3 }, Npy.Read(dir.File("v.npy")).Shape);

        Npy.Write(dir.File("s.npy"), [], new float[] { 2.5f });
        var scalar = Npy.Read(dir.File("s.npy"));
        Assert.Empty(scalar.Shape);
        Assert.Equal([2.5], scalar.Values);
    }

    [Fact]
    public void Float64_and_format_version_2_written_by_numpy_are_read()
    {
        using var dir = new TempFolder();
        var data = new byte[16];
        BinaryPrimitives.WriteDoubleLittleEndian(data, Math.PI);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8), -1e300);
        File.WriteAllBytes(dir.File("d.npy"), NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", data, major: 2));

        var read = Npy.Read(dir.File("d.npy"));

        Assert.Equal("f8", read.DType);
        Assert.Equal(new long[] { 1, 2 }, read.Shape);
        Assert.Equal([Math.PI, -1e300], read.Values);
    }

    public static TheoryData<string, byte[], string> Broken => new()
    {
        { "fortran", NpyBytes("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2), }", [1, 2, 3, 4]), "Fortran order" },
        { "int64", NpyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", new byte[8]), "dtype '<i8' is not supported" },
        { "big-endian", NpyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", new byte[4]), "dtype '>f4' is not supported" },
        { "magic", [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Z', 1, 0, 0, 0], "not a .npy file" },
        { "text", "hello, world\n"u8.ToArray(), "not a .npy file" },
        { "short data", NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new byte[23]), "should hold 24 bytes" },
        { "short header", NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", [])[..30], "" },
        { "empty", [], "" },
        { "version", NpyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }", [0])
            .Select((b, i) => i == 6 ? (byte)4 : b).ToArray(), "format version 4 is not supported" },
        { "no shape", NpyBytes("{'descr': '|u1', 'fortran_order': False, }", [0]), "no 'shape'" },
        { "bad shape", NpyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2, x), }", [0, 0]), "" },
        { "negative shape", NpyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (-1,), }", [0]), "" },
        { "huge shape", NpyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", [0]), "" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void A_broken_file_gives_one_invalid_data_exception_naming_it(string name, byte[] bytes, string problem)
    {
        using var dir = new TempFolder();
        string path = dir.File(name + ".npy");
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidDataException>(() => Npy.Read(path));

        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(problem, e.Message);
    }
}
