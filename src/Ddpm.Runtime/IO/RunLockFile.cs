using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Ddpm.IO;

/// <summary>
/// A run folder's <c>run.lock</c> as readers see it: the process id its holder (<c>ddpm train</c>) wrote, read without
/// taking the lock (the CLI checks who holds a folder, <c>ddpm serve</c> whether a run is training).
/// </summary>
internal static class RunLockFile
{
    /// <summary>The holder's process id, or null when the file cannot be read or holds none (yet).</summary>
    public static int? Holder(string path) =>
        int.TryParse(ReadUnlocked(path)?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0 ? pid : null;

    /// <summary>The lock file's text, read past the advisory lock; null when it cannot be read.</summary>
    private static string? ReadUnlocked(string path)
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                using var shared = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(shared, Encoding.ASCII);
                return reader.ReadToEnd();
            }
            // .NET's own open would ask for a shared lock, which the holder's exclusive one refuses.
            int fd = Unix.Open(path, 0 /* O_RDONLY */);
            if (fd < 0) return null;
            try
            {
                var buffer = new byte[32];
                nint read = Unix.Read(fd, buffer, buffer.Length);
                return read > 0 ? Encoding.ASCII.GetString(buffer, 0, (int)read) : null;
            }
            finally
            {
                _ = Unix.Close(fd); // a read-only descriptor: nothing to lose if close fails
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
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
