using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

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
        if (!File.Exists(lockPath) || Holder(lockPath) is not int pid) return false;
        if (OperatingSystem.IsLinux())
        {
            string fds = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd";
            if (!Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}")) return false;
            try
            {
                string target = RunsFolder.RealPath(lockPath);
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

    /// <summary>The process id the lock's holder wrote, or null.</summary>
    private static int? Holder(string path)
    {
        string? text = null;
        try
        {
            if (OperatingSystem.IsWindows())
            {
                using var shared = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                text = new StreamReader(shared, Encoding.ASCII).ReadToEnd();
            }
            else
            {
                int fd = Unix.Open(path, 0 /* O_RDONLY */);
                if (fd < 0) return null;
                try
                {
                    var buffer = new byte[32];
                    nint read = Unix.Read(fd, buffer, buffer.Length);
                    text = read > 0 ? Encoding.ASCII.GetString(buffer, 0, (int)read) : null;
                }
                finally { _ = Unix.Close(fd); } // read-only: nothing to lose if close fails
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException) { }
        return int.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0 ? pid : null;
    }

    private static class Unix
    {
        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", EntryPoint = "read", SetLastError = true)]
        public static extern nint Read(int fd, byte[] buffer, nint count);

        [DllImport("libc", EntryPoint = "close")]
        public static extern int Close(int fd);
    }
}
