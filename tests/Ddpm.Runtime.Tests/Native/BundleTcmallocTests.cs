using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Build.Framework;

namespace Ddpm.Runtime.Tests.Native;

/// <summary>
/// The build step of build/NativeAllocator.cs, against a package built here and served from loopback:
/// it checks the SHA-256, unpacks, caches, and never fails the build.
/// </summary>
public sealed class BundleTcmallocTests : IDisposable
{
    private const string Member = "usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
    private readonly string root = Directory.CreateTempSubdirectory("ddpm-bundle-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static void SkipUnlessLinuxX64WithDpkg()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.X64,
                   "the build bundles tcmalloc on Linux x64 only");
        Skip.IfNot(File.Exists("/usr/bin/dpkg-deb"), "no /usr/bin/dpkg-deb to build the test package with");
    }

    /// <summary>A tiny Debian package whose "library" is the given text.</summary>
    private byte[] MakePackage(string content)
    {
        string tree = Path.Combine(root, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "DEBIAN"));
        File.WriteAllText(Path.Combine(tree, "DEBIAN", "control"),
            "Package: ddpm-test\nVersion: 1.0\nArchitecture: amd64\nMaintainer: ddpm <ddpm@example.org>\nDescription: test\n");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(tree, Member))!);
        File.WriteAllText(Path.Combine(tree, Member), content);
        string deb = Path.Combine(root, "test.deb");
        using var build = Process.Start(new ProcessStartInfo("dpkg-deb", ["--root-owner-group", "-b", tree, deb]) { RedirectStandardOutput = true })!;
        build.WaitForExit();
        Assert.Equal(0, build.ExitCode);
        return File.ReadAllBytes(deb);
    }

    /// <summary>Serves <paramref name="body"/> at a loopback URL until disposed.</summary>
    private static (string Url, IDisposable Server) Serve(byte[] body)
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                try
                {
                    var context = await listener.GetContextAsync();
                    context.Response.StatusCode = context.Request.Url!.AbsolutePath == "/pkg.deb" ? 200 : 404;
                    if (context.Response.StatusCode == 200) await context.Response.OutputStream.WriteAsync(body);
                    context.Response.Close();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            }
        });
        return ($"http://127.0.0.1:{port}/pkg.deb", listener);
    }

    /// <param name="ridSpecific">Natives beside the program (dotnet publish -r, tool packages), not under runtimes/linux-x64/native.</param>
    private (BundleTcmalloc Task, RecordingEngine Log, string Output) NewTask(string url, string sha256, bool ridSpecific = false)
    {
        string output = Path.Combine(root, "out-" + Guid.NewGuid().ToString("N")[..6]);
        string natives = ridSpecific ? output : Path.Combine(output, "runtimes", "linux-x64", "native");
        Directory.CreateDirectory(natives);
        File.WriteAllText(Path.Combine(natives, "libLibTorchSharp.so"), "");
        var engine = new RecordingEngine();
        var task = new BundleTcmalloc
        {
            BuildEngine = engine, OutputDirectory = output, CacheDirectory = Path.Combine(root, "cache"),
            PackageUrl = url, PackageSha256 = sha256, PackageMember = Member,
        };
        return (task, engine, output);
    }

    [SkippableFact]
    public void A_package_with_the_pinned_hash_is_unpacked_cached_and_copied_next_to_libtorch()
    {
        SkipUnlessLinuxX64WithDpkg();
        byte[] package = MakePackage("not really tcmalloc");
        string sha = Convert.ToHexStringLower(SHA256.HashData(package));
        var (url, server) = Serve(package);
        using (server)
        {
            var (task, log, output) = NewTask(url, sha);
            Assert.True(task.Execute());
            Assert.Equal("not really tcmalloc", File.ReadAllText(Path.Combine(output, "libtcmalloc_minimal.so.4")));
            Assert.Contains(log.Messages, m => m.StartsWith("Ddpm allocator: bundled tcmalloc in "));
            Assert.Equal(["libtcmalloc_minimal.so.4"], Directory.GetFiles(Path.Combine(root, "cache", sha[..16])).Select(Path.GetFileName));
        }
        // Once cached, no download: a dead URL still bundles.
        var (offline, offlineLog, offlineOutput) = NewTask("http://127.0.0.1:9/gone.deb", sha);
        Assert.True(offline.Execute());
        Assert.Equal("not really tcmalloc", File.ReadAllText(Path.Combine(offlineOutput, "libtcmalloc_minimal.so.4")));
        Assert.Empty(offlineLog.Errors);
    }

    [SkippableFact]
    public void A_rid_specific_output_with_the_natives_beside_the_program_is_bundled_too()
    {
        SkipUnlessLinuxX64WithDpkg();
        byte[] package = MakePackage("flat layout");
        string sha = Convert.ToHexStringLower(SHA256.HashData(package));
        var (url, server) = Serve(package);
        using (server)
        {
            var (task, _, output) = NewTask(url, sha, ridSpecific: true);
            Assert.True(task.Execute());
            Assert.Equal("flat layout", File.ReadAllText(Path.Combine(output, "libtcmalloc_minimal.so.4")));
        }
    }

    [SkippableFact]
    public void A_package_with_another_hash_is_refused_with_a_message_not_a_build_error()
    {
        SkipUnlessLinuxX64WithDpkg();
        byte[] package = MakePackage("tampered");
        string pinned = new string('0', 64);
        var (url, server) = Serve(package);
        using (server)
        {
            var (task, log, output) = NewTask(url, pinned);
            Assert.True(task.Execute());
            Assert.False(File.Exists(Path.Combine(output, "libtcmalloc_minimal.so.4")));
            Assert.Empty(log.Errors);
            string message = Assert.Single(log.Messages, m => m.StartsWith("Ddpm allocator: tcmalloc not bundled"));
            Assert.Contains($"has SHA-256 {Convert.ToHexStringLower(SHA256.HashData(package))}, expected {pinned}", message);
            Assert.False(File.Exists(Path.Combine(root, "cache", pinned[..16], "libtcmalloc_minimal.so.4")));
        }
    }

    [SkippableFact]
    public void An_unreachable_archive_leaves_the_build_green()
    {
        SkipUnlessLinuxX64WithDpkg();
        var (task, log, output) = NewTask("http://127.0.0.1:9/libtcmalloc.deb", new string('a', 64));
        Assert.True(task.Execute());
        Assert.False(File.Exists(Path.Combine(output, "libtcmalloc_minimal.so.4")));
        Assert.Contains(log.Messages, m => m.Contains("download of http://127.0.0.1:9/libtcmalloc.deb failed"));
        Assert.Empty(log.Errors);
    }

    private sealed class RecordingEngine : IBuildEngine
    {
        public List<string> Messages { get; } = [];
        public List<string> Errors { get; } = [];
        public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Add(e.Message!);
        public void LogWarningEvent(BuildWarningEventArgs e) => Errors.Add(e.Message!);
        public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e.Message!);
        public void LogCustomEvent(CustomBuildEventArgs e) { }
        public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => false;
        public bool ContinueOnError => false;
        public int LineNumberOfTaskNode => 0;
        public int ColumnNumberOfTaskNode => 0;
        public string ProjectFileOfTaskNode => "test.proj";
    }
}
