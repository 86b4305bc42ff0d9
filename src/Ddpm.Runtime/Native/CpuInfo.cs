using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace Ddpm.Native;

/// <summary>The processor's name and the instruction-set features that matter to libtorch's kernels, for bench reports.</summary>
internal static class CpuInfo
{
    /// <summary>The brand string (CPUID 0x80000002-4) on x86, else the architecture.</summary>
    public static string Name()
    {
        if (X86Base.IsSupported && X86Base.CpuId(unchecked((int)0x80000000), 0).Eax >= unchecked((int)0x80000004))
        {
            var brand = new byte[48];
            for (int i = 0; i < 3; i++)
            {
                var (a, b, c, d) = X86Base.CpuId(unchecked((int)0x80000002) + i, 0);
                foreach (var (value, offset) in new[] { (a, 0), (b, 4), (c, 8), (d, 12) })
                    BitConverter.TryWriteBytes(brand.AsSpan(i * 16 + offset, 4), value);
            }
            string name = Encoding.ASCII.GetString(brand).TrimEnd('\0').Trim();
            if (name.Length > 0) return name;
        }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>The vendor string of CPUID leaf 0 (EBX, EDX, ECX: "GenuineIntel", "AuthenticAMD"), or "" off x86.</summary>
    public static string Vendor()
    {
        if (!X86Base.IsSupported) return "";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> vendor = stackalloc byte[12];
        BitConverter.TryWriteBytes(vendor[0..4], ebx);
        BitConverter.TryWriteBytes(vendor[4..8], edx);
        BitConverter.TryWriteBytes(vendor[8..12], ecx);
        return Encoding.ASCII.GetString(vendor);
    }

    /// <summary>Vector and matrix extensions present, lower case as Linux names them (avx2, avx512f, avx512_bf16, amx_tile, ...).</summary>
    public static IReadOnlyList<string> Features()
    {
        var features = new List<string>();
        void Add(bool present, string name)
        {
            if (present) features.Add(name);
        }
        if (X86Base.IsSupported)
        {
            Add(Avx.IsSupported, "avx");
            Add(Avx2.IsSupported, "avx2");
            Add(Fma.IsSupported, "fma");
            Add(AvxVnni.IsSupported, "avx_vnni");
            Add(Avx512F.IsSupported, "avx512f");
            Add(Avx512BW.IsSupported, "avx512bw");
            Add(Avx512Vbmi.IsSupported, "avx512vbmi");
            // Not exposed by .NET: CPUID leaf 7 (AVX512-VNNI: ECX bit 11; AMX: EDX bits 22, 24, 25; AVX512-FP16: EDX bit 23)
            // and leaf 7 sub-leaf 1 (AVX512-BF16: EAX bit 5), when the CPU has leaf 7 at all.
            if (X86Base.CpuId(0, 0).Eax >= 7)
            {
                var (_, _, ecx, edx) = X86Base.CpuId(7, 0);
                var (eax1, _, _, _) = X86Base.CpuId(7, 1);
                Add((ecx & (1 << 11)) != 0, "avx512_vnni");
                Add((eax1 & (1 << 5)) != 0, "avx512_bf16");
                Add((edx & (1 << 23)) != 0, "avx512_fp16");
                Add((edx & (1 << 22)) != 0, "amx_bf16");
                Add((edx & (1 << 24)) != 0, "amx_tile");
                Add((edx & (1 << 25)) != 0, "amx_int8");
            }
        }
        else
        {
            Add(System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported, "asimd");
        }
        return features;
    }
}
