using Ddpm.IO;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Ddpm.Cli;

/// <summary>
/// The one process that owns a run folder: an exclusive operating-system lock on <c>run.lock</c> inside it, held while
/// `ddpm train` runs. The kernel drops the lock when the process ends, however it ends (kill -9 included), so nothing stale
/// is left: the file may stay, and the next run locks it again. The holder writes its process id into the file, which a
/// refused run reads for its message. Under mpirun only rank 0 takes it (it alone writes the folder).
/// </summary>
/// <remarks>
/// On Linux and macOS .NET takes flock(LOCK_EX | LOCK_NB) for <see cref="FileShare.None"/>; the id is read with a plain
/// open(2) and read(2), which an advisory lock does not stop. On Windows the holder shares the file for reading only, so a
/// second writer cannot open it but the id can be read.
/// </remarks>
internal sealed class RunFolderLock : IDisposable
{
    /// <summary>The lock file's name inside the run folder.</summary>
    public const string FileName = "run.lock";

    private readonly FileStream stream;

    private RunFolderLock(FileStream stream) => this.stream = stream;

    /// <summary>
    /// Takes the lock of <paramref name="folder"/> (created if missing), or throws one usage line naming the process that
    /// holds it.
    /// </summary>
    public static RunFolderLock Take(string folder)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, FileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, OperatingSystem.IsWindows() ? FileShare.Read : FileShare.None);
        }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException))
        {
            throw new UsageException(Refusal(folder, Holder(path)));
        }
        try
        {
            byte[] id = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
            stream.SetLength(0);
            stream.Write(id);
            stream.Flush(flushToDisk: true);
            return new RunFolderLock(stream);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The one line a run refused by a held lock prints.</summary>
    public static string Refusal(string folder, int? holder) =>
        $"{folder} is in use by another ddpm train (process {(holder is int pid ? pid.ToString(CultureInfo.InvariantCulture) : "unknown: it has not written its id yet")}); " +
        "wait for it to end, or choose another --out.";

    /// <summary>The process id the holder wrote into the lock file, or null when it cannot be read (yet).</summary>
    internal static int? Holder(string path)
    {
        // The holder writes its id just after taking the lock: a contender that comes in between waits a moment for it.
        for (int attempt = 0; attempt < 10; attempt++)
        {
            if (RunLockFile.Holder(path) is int pid) return pid;
            Thread.Sleep(20);
        }
        return null;
    }

    /// <summary>Releases the lock (the file stays; the next run locks it again).</summary>
    public void Dispose() => stream.Dispose();
}
