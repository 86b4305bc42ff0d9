// Bundles tcmalloc (gperftools' libtcmalloc_minimal.so.4) next to libtorch in the build output.
//
// libtorch's CPU tensors come from malloc; with tcmalloc preloaded a training step of the seed model
// is as fast as with tuned glibc malloc while sampling is faster and peak resident memory is about
// half (docs/performance.md). The ddpm runtime preloads the bundled copy (src/Ddpm.Runtime/Native/
// AllocatorPreload.cs) and falls back to tuned glibc malloc when there is none, so every failure
// here is a message, never a build error.
//
// The library comes from Debian's package (pinned URL and SHA-256), fetched once into a cache
// folder and unpacked with dpkg-deb; it needs only glibc and libstdc++, which libtorch needs too.
#nullable enable
using System;
using System.Diagnostics;
using System.IO;
using System.Net.Http;
using System.Security.Cryptography;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class BundleTcmalloc : Microsoft.Build.Utilities.Task
{
    public const string LibraryName = "libtcmalloc_minimal.so.4";

    /// <summary>The output folder (OutDir or PublishDir) to copy the library into.</summary>
    [Required]
    public string OutputDirectory { get; set; } = "";

    /// <summary>Folder that keeps the downloaded package and the unpacked library between builds.</summary>
    [Required]
    public string CacheDirectory { get; set; } = "";

    [Required]
    public string PackageUrl { get; set; } = "";

    [Required]
    public string PackageSha256 { get; set; } = "";

    /// <summary>Path of the library inside the package's file system.</summary>
    [Required]
    public string PackageMember { get; set; } = "";

    public override bool Execute()
    {
        // Only outputs that carry libtorch's Linux natives run the ddpm runtime (portable: under runtimes/linux-x64/native;
        // RID-specific, as in tool packages: beside the program).
        if (!File.Exists(Path.Combine(OutputDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"))
            && !File.Exists(Path.Combine(OutputDirectory, "libLibTorchSharp.so")))
            return true;
        if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)
            || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
            return true; // the pinned package is linux-x64; elsewhere the runtime keeps its fallback

        string target = Path.Combine(OutputDirectory, LibraryName);
        try
        {
            string cached = Path.Combine(CacheDirectory, PackageSha256.Substring(0, 16), LibraryName);
            if (!File.Exists(cached))
            {
                string? problem = Fetch(cached);
                if (problem != null)
                {
                    Log.LogMessage(MessageImportance.High,
                        $"Ddpm allocator: tcmalloc not bundled ({problem}); ddpm will use a system libtcmalloc_minimal.so.4 if there is one, else tuned glibc malloc.");
                    return true;
                }
            }
            if (File.Exists(target) && new FileInfo(target).Length == new FileInfo(cached).Length)
                return true;
            File.Copy(cached, target + ".ddpm-tmp", overwrite: true);
            File.Delete(target);
            File.Move(target + ".ddpm-tmp", target);
            Log.LogMessage(MessageImportance.High, $"Ddpm allocator: bundled tcmalloc in {target}.");
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            Log.LogMessage(MessageImportance.High, $"Ddpm allocator: tcmalloc not bundled ({e.Message}).");
        }
        return true;
    }

    /// <summary>Downloads, checks and unpacks the package; returns null on success, else what went wrong.</summary>
    private string? Fetch(string cached)
    {
        string folder = Path.GetDirectoryName(cached)!;
        Directory.CreateDirectory(folder);
        // Unique names: two projects of one build may fetch at the same time.
        string unique = Guid.NewGuid().ToString("N");
        string package = Path.Combine(folder, $"package-{unique}.deb");
        string unpacked = Path.Combine(folder, $"unpacked-{unique}");
        try
        {
            using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) })
            using (var response = http.GetAsync(PackageUrl).GetAwaiter().GetResult())
            {
                if (!response.IsSuccessStatusCode)
                    return $"{PackageUrl} answered {(int)response.StatusCode}";
                File.WriteAllBytes(package, response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult());
            }
            string actual;
            using (var sha = SHA256.Create())
            using (var stream = File.OpenRead(package))
                actual = BitConverter.ToString(sha.ComputeHash(stream)).Replace("-", "").ToLowerInvariant();
            if (actual != PackageSha256.ToLowerInvariant())
                return $"{PackageUrl} has SHA-256 {actual}, expected {PackageSha256}";

            string? error = Run("dpkg-deb", $"-x \"{package}\" \"{unpacked}\"");
            if (error != null)
                return error;
            string library = Path.Combine(unpacked, PackageMember.TrimStart('/'));
            if (!File.Exists(library))
                return $"the package has no {PackageMember}";
            // File.Copy follows the package's symlink to the real file.
            string temp = $"{cached}.{unique}";
            File.Copy(library, temp, overwrite: true);
            try { File.Move(temp, cached); }
            catch (IOException) when (File.Exists(cached)) { File.Delete(temp); } // another build was first
            return null;
        }
        catch (Exception e) when (e is HttpRequestException || e is System.Threading.Tasks.TaskCanceledException || e is IOException)
        {
            return $"download of {PackageUrl} failed: {e.Message}";
        }
        finally
        {
            try { File.Delete(package); } catch (IOException) { }
            try { if (Directory.Exists(unpacked)) Directory.Delete(unpacked, recursive: true); } catch (IOException) { }
        }
    }

    private static string? Run(string program, string arguments)
    {
        try
        {
            var start = new ProcessStartInfo(program, arguments) { RedirectStandardError = true, UseShellExecute = false };
            using (var process = Process.Start(start)!)
            {
                string stderr = process.StandardError.ReadToEnd();
                process.WaitForExit();
                return process.ExitCode == 0 ? null : $"{program} failed: {stderr.Trim()}";
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return $"{program} is not installed (it unpacks Debian packages)";
        }
    }
}
