// Makes TorchSharp's native library load on Linux hosts whose libstdc++ predates GCC 13.
//
// libLibTorchSharp.so (TorchSharp 0.107) asks for the symbol version GLIBCXX_3.4.32 only for
// _ZSt21ios_base_library_initv, which GCC 13 references from <iostream> but nothing calls.
// Marking that version requirement weak (VER_FLG_WEAK in its Vernaux entry of .gnu.version_r)
// lets the loader accept the library on GCC 12 hosts (Debian 12, Ubuntu 22.04).
// The patch is applied to the copy in the build or publish output, never to the NuGet cache.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class PatchTorchSharpNativeCompat : Microsoft.Build.Utilities.Task
{
    const string RequiredVersion = "GLIBCXX_3.4.32";
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>The output folder (OutDir or PublishDir) to look in.</summary>
    [Required]
    public string OutputDirectory { get; set; } = "";

    public override bool Execute()
    {
        // Portable outputs keep natives under runtimes/<rid>/native; RID-specific ones (dotnet publish -r, tool packages)
        // put them beside the program.
        string library = Path.Combine(OutputDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(library))
            library = Path.Combine(OutputDirectory, "libLibTorchSharp.so");
        if (!File.Exists(library))
            return true; // this project does not copy TorchSharp's natives

        if (!OperatingSystemIsLinux())
        {
            Log.LogMessage(MessageImportance.Normal, "Ddpm native compat: not Linux, nothing to do.");
            return true;
        }
        if (HostProvidesVersion())
        {
            Log.LogMessage(MessageImportance.High, $"Ddpm native compat: host libstdc++ provides {RequiredVersion}; {library} left as shipped.");
            return true;
        }

        try
        {
            byte[] bytes = File.ReadAllBytes(library);
            string outcome = MarkVersionWeak(bytes, out bool changed);
            if (changed)
            {
                // Write a new file and rename it over the old one: the output copy may be a hard
                // link into the NuGet cache, which must never be modified.
                string temp = library + ".ddpm-tmp";
                File.WriteAllBytes(temp, bytes);
                File.Delete(library);
                File.Move(temp, library);
            }
            Log.LogMessage(MessageImportance.High, $"Ddpm native compat: {outcome} in {library}.");
            return true;
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is InvalidDataException)
        {
            Log.LogError($"Ddpm native compat: could not patch {library}: {e.Message}");
            return false;
        }
    }

    static bool OperatingSystemIsLinux() =>
        System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux);

    static bool HostProvidesVersion()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        byte[] needle = Encoding.ASCII.GetBytes(RequiredVersion + "\0");
        foreach (string path in candidates)
        {
            if (!File.Exists(path)) continue;
            return IndexOf(File.ReadAllBytes(path), needle) >= 0;
        }
        return false; // no libstdc++ found where we look: patching is harmless
    }

    /// <summary>Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 requirement. Returns what it did.</summary>
    public static string MarkVersionWeak(byte[] elf, out bool changed)
    {
        changed = false;
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("not a 64-bit little-endian ELF file");

        ulong sectionTable = U64(elf, 0x28);
        int entrySize = U16(elf, 0x3A), count = U16(elf, 0x3C);
        for (int i = 0; i < count; i++)
        {
            int header = checked((int)sectionTable + i * entrySize);
            if (U32(elf, header + 4) != ShtGnuVerneed) continue;

            int verneed = checked((int)U64(elf, header + 0x18));
            int stringsHeader = checked((int)sectionTable + (int)U32(elf, header + 0x28) * entrySize);
            int strings = checked((int)U64(elf, stringsHeader + 0x18));
            uint needCount = U32(elf, header + 0x2C);

            int need = verneed;
            for (uint n = 0; n < needCount; n++)
            {
                int auxCount = U16(elf, need + 2);
                int aux = need + (int)U32(elf, need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    string name = CString(elf, strings + (int)U32(elf, aux + 8));
                    if (name == RequiredVersion)
                    {
                        ushort flags = U16(elf, aux + 4);
                        if ((flags & VerFlgWeak) != 0)
                            return $"{RequiredVersion} already weak, nothing to do";
                        flags |= VerFlgWeak;
                        elf[aux + 4] = (byte)flags;
                        elf[aux + 5] = (byte)(flags >> 8);
                        changed = true;
                        return $"marked {RequiredVersion} weak (host libstdc++ lacks it)";
                    }
                    aux += (int)U32(elf, aux + 12);
                }
                need += (int)U32(elf, need + 12);
            }
            return $"no {RequiredVersion} requirement, nothing to do";
        }
        return "no .gnu.version_r section, nothing to do";
    }

    static ushort U16(byte[] b, int o) => (ushort)(b[o] | b[o + 1] << 8);
    static uint U32(byte[] b, int o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
    static ulong U64(byte[] b, int o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;

    static string CString(byte[] b, int o)
    {
        int end = o;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, o, end - o);
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }
}
