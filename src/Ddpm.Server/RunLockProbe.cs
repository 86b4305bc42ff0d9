using System.Globalization;
using Ddpm.IO;

namespace Ddpm.Server;

/// <summary>
/// Whether a live <c>ddpm train</c> holds a run's <c>run.lock</c> (the CLI's RunFolderLock), found without touching the
/// lock: opening the file through .NET would take a shared flock, which would make a <c>ddpm train</c> starting at that
/// moment refuse the folder. The holder's process id is read with plain open(2)/read(2); on Linux the run is held when that
/// process has the file open (/proc/PID/fd), elsewhere when that process is alive.
/// </summary>
internal static class RunLockProbe
{
    public static bool IsHeld(string lockPath)
    {
        if (!File.Exists(lockPath) || RunLockFile.Holder(lockPath) is not int pid) return false;
        if (OperatingSystem.IsLinux())
        {
            string fds = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd";
            if (!Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}")) return false;
            try
            {
                string target = FilePaths.RealPath(lockPath);
                foreach (string fd in Directory.EnumerateFileSystemEntries(fds))
                    if (new FileInfo(fd).LinkTarget is { } link && link == target) return true;
                return false;
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                return true; // another user's live process: it may hold it
            }
        }
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
