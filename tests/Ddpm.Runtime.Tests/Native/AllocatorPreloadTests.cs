using System.Runtime.InteropServices;
using System.Text;
using Ddpm.Native;
using static Ddpm.Native.AllocatorPreload;

namespace Ddpm.Runtime.Tests.Native;

/// <summary>The pieces of the tcmalloc restart that can be checked in process (the restart itself: Ddpm.Cli.Tests).</summary>
public class AllocatorPreloadTests
{
    [Theory]
    [InlineData(null, Choice.Auto, null)]
    [InlineData("", Choice.Auto, null)]
    [InlineData("auto", Choice.Auto, null)]
    [InlineData("tcmalloc", Choice.Tcmalloc, null)]
    [InlineData(" glibc ", Choice.TunedGlibc, null)]
    [InlineData("default", Choice.Default, null)]
    [InlineData("off", Choice.Default, null)]
    [InlineData("/opt/lib/libjemalloc.so.2", Choice.Library, "/opt/lib/libjemalloc.so.2")]
    [InlineData("./libmimalloc.so.2", Choice.Library, "./libmimalloc.so.2")]
    public void DDPM_MALLOC_values_map_to_choices(string? value, Choice choice, string? library) =>
        Assert.Equal((choice, library), ParseChoice(value));

    [Fact]
    public void An_unknown_DDPM_MALLOC_value_names_the_accepted_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => ParseChoice("jemalloc"));
        Assert.Equal("DDPM_MALLOC=jemalloc is not one of auto, tcmalloc, glibc, default or a path to an allocator library.", e.Message);
    }

    [Fact]
    public void Tcmalloc_is_looked_for_next_to_the_program_first_then_in_system_folders()
    {
        var candidates = TcmallocCandidates("/app");
        Assert.Equal("/app/libtcmalloc_minimal.so.4", candidates[0]);
        Assert.All(candidates, c => Assert.EndsWith("/libtcmalloc_minimal.so.4", c));
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64)
            Assert.Equal("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", candidates[1]);
        Assert.Equal(candidates.Count, candidates.Distinct().Count());
    }

    [Fact]
    public void The_restart_environment_puts_the_library_first_in_LD_PRELOAD_and_keeps_the_rest()
    {
        var fresh = RestartEnvironment(new Dictionary<string, string> { ["HOME"] = "/home/u" }, "/app/libtcmalloc_minimal.so.4");
        Assert.Equal("/app/libtcmalloc_minimal.so.4", fresh["LD_PRELOAD"]);
        Assert.Equal("/home/u", fresh["HOME"]);
        Assert.Equal("1", fresh[RestartedVariable]);
        Assert.Equal((1L << 40).ToString(), fresh["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]);

        var existing = RestartEnvironment(new Dictionary<string, string>
        {
            ["LD_PRELOAD"] = "/usr/lib/libfoo.so",
            ["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] = "4096",
        }, "/app/libtcmalloc_minimal.so.4");
        Assert.Equal("/app/libtcmalloc_minimal.so.4:/usr/lib/libfoo.so", existing["LD_PRELOAD"]);
        Assert.Equal("4096", existing["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]); // the user's setting wins
    }

    [Fact]
    public void The_command_line_is_split_at_NULs_keeping_spaces_and_UTF8()
    {
        byte[] cmdline = Encoding.UTF8.GetBytes("dotnet\0ddpm.dll\0sample\0a b/é.ckpt\0\0");
        Assert.Equal(["dotnet", "ddpm.dll", "sample", "a b/é.ckpt", ""], ParseCommandLine(cmdline));
        Assert.Equal(["ddpm"], ParseCommandLine(Encoding.UTF8.GetBytes("ddpm\0")));
    }

    [SkippableFact]
    public void Loaded_libraries_are_found_in_this_process_maps()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "/proc/self/maps is Linux's");
        string? libc = LoadedLibrary("libc.so.6");
        Assert.NotNull(libc);
        Assert.StartsWith("/", libc);
        Assert.Contains("/libc", libc);
        Assert.Null(LoadedLibrary("libddpm_not_a_library.so"));
        Assert.Null(Allocator.PreloadedAllocator()); // the test host runs without LD_PRELOAD
    }
}
