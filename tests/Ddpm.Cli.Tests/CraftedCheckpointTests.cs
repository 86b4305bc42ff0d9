using System.Security.Cryptography;
using System.Text;

namespace Ddpm.Cli.Tests;

/// <summary>
/// Checkpoints whose SHA-256 is right but whose first tensor's header is absurd (a huge shape, a negative size, an
/// unknown dtype code, more bytes than the file holds): each is one line naming the tensor and why, exit 1, before
/// anything is allocated, and nothing is written.
/// </summary>
[Collection("cli")]
public sealed class CraftedCheckpointTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-crafted-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static byte[] Leb128(long value)
    {
        var bytes = new List<byte>();
        ulong rest = unchecked((ulong)value);
        do
        {
            byte b = (byte)(rest & 0x7f);
            rest >>= 7;
            bytes.Add(rest != 0 ? (byte)(b | 0x80) : b);
        } while (rest != 0);
        return bytes.ToArray();
    }

    /// <summary>TorchSharp's tensor header: dtype code, rank, sizes, each in LEB128.</summary>
    private static byte[] Header(long dtype, params long[] shape) =>
        [.. Leb128(dtype), .. Leb128(shape.Length), .. shape.SelectMany(Leb128)];

    /// <summary>
    /// The tiny checkpoint with its first model tensor's header replaced by <paramref name="header"/> (its bytes kept), the
    /// payload length and SHA-256 recomputed. Returns the file, the tensor's name and the payload bytes after the new header.
    /// </summary>
    private (string Path, string Tensor, long Left) Crafted(string name, Func<long, long[], byte[]> header)
    {
        byte[] file = File.ReadAllBytes(OutputSafetyTests.TinyCheckpoint(root, "good-" + name));
        const int start = 8 + 4 + 8; // magic, version, payload length
        byte[] payload = file[start..^32];
        using var reader = new BinaryReader(new MemoryStream(payload), Encoding.UTF8);
        reader.ReadString(); // schedule fingerprint
        reader.ReadString(); // settings
        reader.ReadInt64(); // step
        reader.ReadBytes(4 * 3); // epoch, batch, threads
        Assert.True(reader.ReadInt32() > 0);
        string tensor = reader.ReadString();
        int headerStart = (int)reader.BaseStream.Position;
        long ReadLeb()
        {
            long value = 0;
            for (int i = 0; ; i++)
            {
                long b = reader.ReadByte();
                value |= (b & 0x7f) << (7 * i);
                if ((b & 0x80) == 0) return value;
            }
        }
        long dtype = ReadLeb();
        var shape = new long[ReadLeb()];
        for (int i = 0; i < shape.Length; i++) shape[i] = ReadLeb();
        Assert.Equal(6, dtype); // float32
        byte[] crafted = header(dtype, shape);
        byte[] newPayload = [.. payload[..headerStart], .. crafted, .. payload[(int)reader.BaseStream.Position..]];
        string path = Path.Combine(root, name + ".ckpt");
        File.WriteAllBytes(path, [.. file[..12], .. BitConverter.GetBytes((long)newPayload.Length), .. newPayload, .. SHA256.HashData(newPayload)]);
        return (path, tensor, newPayload.Length - headerStart - crafted.Length);
    }

    private void AssertRefused(string path, string problem)
    {
        string png = Path.Combine(root, "out.png");
        byte[] before = File.ReadAllBytes(path);
        var (code, _, error) = InProcessCli.Ddpm("sample", path, "--out", png, "--count", "1");
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(code == 1, $"exit code {code}, stderr: {error}");
        Assert.Equal($"ddpm: Checkpoint '{path}': is corrupt: {problem}", Assert.Single(lines));
        Assert.DoesNotContain("   at ", error);
        Assert.False(File.Exists(png));
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_huge_shape_is_refused_naming_the_tensor_before_it_is_allocated()
    {
        const long big = 1L << 31;
        var (path, tensor, left) = Crafted("huge", (dtype, _) => Header(dtype, big, big, big, 1));
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        AssertRefused(path, $"tensor '{tensor}' (Float32 [{big}, {big}, {big}, 1]) needs more than {long.MaxValue} bytes, but only {left} bytes are left in the checkpoint.");
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - allocated < 64L << 20, "more than 64 MiB allocated before the refusal");
    }

    [Fact]
    public void A_shape_needing_more_bytes_than_the_file_holds_is_refused_naming_the_tensor()
    {
        long[] stated = [];
        var (path, tensor, left) = Crafted("mismatch", (dtype, shape) => Header(dtype, stated = [shape[0] * 1_000_000, .. shape[1..]]));
        long bytes = stated.Aggregate(4L, (a, b) => a * b);
        Assert.True(bytes > left);
        AssertRefused(path, $"tensor '{tensor}' (Float32 [{string.Join(", ", stated)}]) needs {bytes} bytes, but only {left} bytes are left in the checkpoint.");
    }

    [Fact]
    public void A_negative_size_is_refused_naming_the_tensor()
    {
        var (path, tensor, _) = Crafted("negative", (dtype, shape) => Header(dtype, [shape[0], -1, .. shape[2..]]));
        AssertRefused(path, $"tensor '{tensor}' (Float32) has size -1 in dimension 1; sizes are >= 0.");
    }

    [Theory]
    [InlineData(99)]
    [InlineData(12)] // QInt8: a dtype libtorch knows, but no checkpoint holds
    [InlineData(1L << 40)]
    public void An_unknown_dtype_code_is_refused_naming_the_tensor(long code)
    {
        var (path, tensor, _) = Crafted("dtype" + code, (_, shape) => Header(code, shape));
        AssertRefused(path, $"tensor '{tensor}' has dtype code {code}, which is no tensor type a checkpoint holds.");
    }

    [Fact]
    public void Too_many_dimensions_are_refused_naming_the_tensor()
    {
        var (path, tensor, _) = Crafted("rank", (dtype, _) => Header(dtype, Enumerable.Repeat(1L, 65).ToArray()));
        AssertRefused(path, $"tensor '{tensor}' (Float32) has 65 dimensions; a tensor has 0 to 64.");
    }

    [Fact]
    public void The_unchanged_header_still_loads()
    {
        var (path, _, _) = Crafted("same", Header);
        string png = Path.Combine(root, "same.png");
        var (code, _, error) = InProcessCli.Ddpm("sample", path, "--out", png, "--count", "1", "--sampler", "ddim", "--steps", "2");
        Assert.True(code == 0, error);
        Assert.True(File.Exists(png));
    }
}
