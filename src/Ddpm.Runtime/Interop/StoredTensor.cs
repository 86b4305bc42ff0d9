using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>Sizes a file claims for a tensor, checked before anything is allocated (crafted headers must not overflow or exhaust memory).</summary>
internal static class StoredTensor
{
    /// <summary>The most dimensions a stored tensor may have (libtorch's tensors have at most 64); more is a corrupt header.</summary>
    public const int MaxDimensions = 64;

    /// <summary>Bytes per element of the dtypes ddpm reads from files; null for any other (quantized, unknown codes).</summary>
    public static int? ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.ComplexFloat64 => 16,
        _ => null,
    };

    /// <summary>
    /// The bytes of a tensor of <paramref name="shape"/> (sizes &gt;= 0), or null when that is past <see cref="long.MaxValue"/>.
    /// Counted in 128 bits and stopped once past, so a shape such as [2^31, 2^31, 2^31, 1] cannot overflow; the sizes
    /// besides a zero one count too, as libtorch computes strides from them.
    /// </summary>
    public static long? Bytes(IReadOnlyList<long> shape, int elementSize)
    {
        Int128 bytes = elementSize, span = 1;
        foreach (long size in shape)
        {
            span *= Math.Max(size, 1);
            if (span > long.MaxValue) return null;
            bytes *= size; // at most 16 * span: no overflow
        }
        return bytes > long.MaxValue ? null : (long)bytes;
    }

    /// <summary>"[2, 3]".</summary>
    public static string Shape(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}
