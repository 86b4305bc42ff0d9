using System.Runtime.CompilerServices;

namespace Ddpm.Generators.Tests;

/// <summary>
/// Snapshot assertions with Verify's file conventions, so moving to Verify.Xunit is a package swap:
/// the accepted text is <c>Snapshots/{Class}.{Method}#{Name}.verified.cs</c> beside the test source;
/// on a mismatch the new text is written to the matching <c>.received.cs</c> and the test fails.
/// Set DDPM_ACCEPT_SNAPSHOTS=1 to accept received text as verified (then review the git diff).
/// </summary>
public static class Snapshot
{
    public static void Verify(string actual, string name, [CallerFilePath] string testFile = "", [CallerMemberName] string method = "")
    {
        string folder = Path.Combine(Path.GetDirectoryName(testFile)!, "Snapshots");
        string stem = $"{Path.GetFileNameWithoutExtension(testFile)}.{method}#{name}";
        string verifiedPath = Path.Combine(folder, stem + ".verified.cs");
        string receivedPath = Path.Combine(folder, stem + ".received.cs");
        actual = actual.Replace("\r\n", "\n");

        string? verified = File.Exists(verifiedPath) ? File.ReadAllText(verifiedPath).Replace("\r\n", "\n") : null;
        if (verified == actual)
        {
            File.Delete(receivedPath);
            return;
        }
        Directory.CreateDirectory(folder);
        if (Environment.GetEnvironmentVariable("DDPM_ACCEPT_SNAPSHOTS") == "1")
        {
            File.WriteAllText(verifiedPath, actual);
            File.Delete(receivedPath);
            return;
        }
        File.WriteAllText(receivedPath, actual);
        Assert.Fail(verified is null
            ? $"No verified snapshot {Path.GetFileName(verifiedPath)} yet; review {Path.GetFileName(receivedPath)} and accept it (DDPM_ACCEPT_SNAPSHOTS=1)."
            : $"Generated code differs from {Path.GetFileName(verifiedPath)}; see {Path.GetFileName(receivedPath)}.");
    }
}
