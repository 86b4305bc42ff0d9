using System.Runtime.InteropServices;
using System.Text;

namespace Ddpm.Native;

/// <summary>
/// Puts tcmalloc under libtorch. A process cannot swap its malloc once running, so on Linux the
/// ddpm command restarts itself once, before any work, with LD_PRELOAD naming tcmalloc: the build
/// bundles libtcmalloc_minimal.so.4 next to the program (build/NativeAllocator.cs), or the system
/// has one. Without a library, or when the restart fails, the process goes on with tuned glibc
/// malloc (<see cref="Allocator.Tune"/>). DDPM_MALLOC chooses:
/// unset or <c>auto</c> (tcmalloc if found), <c>tcmalloc</c> (required), <c>glibc</c> (tuned glibc),
/// <c>default</c> (glibc as it is), or a path to another allocator library to preload.
/// </summary>
public static class AllocatorPreload
{
    /// <summary>The file name of the tcmalloc library that is bundled or looked for (gperftools' minimal build).</summary>
    public const string TcmallocLibrary = "libtcmalloc_minimal.so.4";

    /// <summary>Set in the restarted process: the restart happened, so never restart again.</summary>
    public const string RestartedVariable = "DDPM_MALLOC_RESTARTED";

    /// <summary>What DDPM_MALLOC asks for.</summary>
    public enum Choice
    {
        /// <summary>Unset or <c>auto</c>: tcmalloc when a library is found, else tuned glibc malloc.</summary>
        Auto,
        /// <summary><c>tcmalloc</c>: tcmalloc is required; not finding it is reported.</summary>
        Tcmalloc,
        /// <summary><c>glibc</c>: no preload; glibc malloc tuned by <see cref="Allocator.Tune"/>.</summary>
        TunedGlibc,
        /// <summary><c>default</c> (or <c>off</c>): glibc malloc as it is, untuned.</summary>
        Default,
        /// <summary>A path (a value with a '/'): preload that allocator library.</summary>
        Library,
    }

    /// <summary>Reads DDPM_MALLOC; a value with a '/' is a library path.</summary>
    public static (Choice Choice, string? Library) ParseChoice(string? value) =>
        value?.Trim() switch
        {
            null or "" or "auto" => (Choice.Auto, null),
            "tcmalloc" => (Choice.Tcmalloc, null),
            "glibc" => (Choice.TunedGlibc, null),
            "default" or "off" => (Choice.Default, null),
            string path when path.Contains('/') => (Choice.Library, path),
            string other => throw new ArgumentException(
                $"{Allocator.EnvironmentVariable}={other} is not one of auto, tcmalloc, glibc, default or a path to an allocator library."),
        };

    /// <summary>Where tcmalloc is looked for, in order: next to the program, then the system's library folders.</summary>
    public static IReadOnlyList<string> TcmallocCandidates(string programDirectory)
    {
        string multiarch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x86_64-linux-gnu",
            Architecture.Arm64 => "aarch64-linux-gnu",
            _ => RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant() + "-linux-gnu",
        };
        return
        [
            Path.Combine(programDirectory, TcmallocLibrary),
            $"/usr/lib/{multiarch}/{TcmallocLibrary}",
            $"/usr/lib64/{TcmallocLibrary}",
            $"/usr/lib/{TcmallocLibrary}",
            $"/usr/local/lib/{TcmallocLibrary}",
        ];
    }

    /// <summary>
    /// Restarts this process with the chosen allocator preloaded when that is needed and possible; returns
    /// only when it did not restart: null when the process should go on, or one line saying why the
    /// user's explicit choice cannot be met. Call first thing in Main, before any other work.
    /// </summary>
    public static string? RestartIfNeeded()
    {
        if (!OperatingSystem.IsLinux() || System.Diagnostics.Debugger.IsAttached) // a debugger would lose the process
            return null;
        (Choice choice, string? library) parsed;
        try { parsed = ParseChoice(Environment.GetEnvironmentVariable(Allocator.EnvironmentVariable)); }
        catch (ArgumentException e) { return e.Message; }

        var (choice, library) = parsed;
        if (choice is Choice.TunedGlibc or Choice.Default)
            return null;
        if (choice == Choice.Library && !File.Exists(library))
            return $"{Allocator.EnvironmentVariable}={library}: no such file.";
        if (choice is Choice.Auto or Choice.Tcmalloc)
        {
            var candidates = TcmallocCandidates(AppContext.BaseDirectory);
            library = candidates.FirstOrDefault(File.Exists);
            if (library is null)
                return choice == Choice.Tcmalloc
                    ? $"{Allocator.EnvironmentVariable}=tcmalloc, but {TcmallocLibrary} is in none of: {string.Join(", ", candidates)}. " +
                      "Build on Linux x64 with network access to bundle it, or install libtcmalloc-minimal4 (Debian, Ubuntu) or gperftools-libs."
                    : null;
        }
        if (LoadedLibrary(Path.GetFileName(library!)) is not null
            || Environment.GetEnvironmentVariable(RestartedVariable) is not null) // ld.so refused it: keep going without
            return null;

        Allocator.RestartProblem = Restart(library!);
        return null;
    }

    /// <summary>The mapped path of a loaded library whose file name starts with <paramref name="fileName"/>'s stem, or null.</summary>
    public static string? LoadedLibrary(string fileName)
    {
        string stem = fileName.Split('.')[0];
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash >= 0 && Path.GetFileName(line.AsSpan(slash)).StartsWith(stem, StringComparison.Ordinal))
                    return line[slash..];
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>The environment of the restarted process: the library first in LD_PRELOAD.</summary>
    public static SortedDictionary<string, string> RestartEnvironment(IDictionary<string, string> current, string library)
    {
        var environment = new SortedDictionary<string, string>(current, StringComparer.Ordinal);
        environment["LD_PRELOAD"] = current.TryGetValue("LD_PRELOAD", out string? preload) && preload.Length > 0
            ? $"{library}:{preload}"
            : library;
        environment[RestartedVariable] = "1";
        // tcmalloc reports every allocation above 1 GiB on stderr by default; large batches are normal here.
        environment.TryAdd("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", (1L << 40).ToString());
        return environment;
    }

    /// <summary>Splits /proc/self/cmdline (arguments each ended by a NUL) into argv.</summary>
    public static string[] ParseCommandLine(byte[] cmdline)
    {
        var arguments = Encoding.UTF8.GetString(cmdline).Split('\0').ToList();
        if (arguments.Count > 0 && arguments[^1].Length == 0)
            arguments.RemoveAt(arguments.Count - 1);
        return [.. arguments];
    }

    /// <summary>Replaces this process with itself under the new environment; returns only on failure, with the reason.</summary>
    private static string Restart(string library)
    {
        string[] argv;
        try { argv = ParseCommandLine(File.ReadAllBytes("/proc/self/cmdline")); }
        catch (IOException e) { return $"cannot read this process's command line: {e.Message}"; }

        var current = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
            current[(string)entry.Key] = (string?)entry.Value ?? "";
        var environment = RestartEnvironment(current, library);

        var strings = new List<IntPtr>();
        try
        {
            IntPtr[] NullTerminated(IEnumerable<string> values)
            {
                var pointers = values.Select(Marshal.StringToCoTaskMemUTF8).ToList();
                strings.AddRange(pointers);
                pointers.Add(IntPtr.Zero);
                return [.. pointers];
            }
            IntPtr[] nativeArgv = NullTerminated(argv);
            IntPtr[] nativeEnvironment = NullTerminated(environment.Select(pair => $"{pair.Key}={pair.Value}"));
            Console.Out.Flush();
            _ = execve("/proc/self/exe", nativeArgv, nativeEnvironment); // returns only on failure (-1, errno below)
            return $"restart with {library} preloaded failed (errno {Marshal.GetLastPInvokeError()})";
        }
        finally
        {
            foreach (IntPtr pointer in strings) Marshal.FreeCoTaskMem(pointer);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int execve(string path, IntPtr[] argv, IntPtr[] envp);
}
