namespace Ddpm.IO;

/// <summary>Paths as the file system resolves them, for the rules that compare them (outputs against inputs, paths kept inside a folder).</summary>
internal static class FilePaths
{
    /// <summary>
    /// <paramref name="path"/> as a full path with every symbolic link in it followed (its folders' too), as far as the parts
    /// exist; the parts that do not exist yet are kept as written. Links that loop or go 40 deep stop the resolution there.
    /// </summary>
    public static string RealPath(string path)
    {
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return path; }
        string root = Path.GetPathRoot(full) ?? "";
        string current = root;
        int links = 0;
        var pending = new Stack<string>(full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        while (pending.Count > 0)
        {
            string part = pending.Pop();
            string next = Path.Combine(current, part);
            string? link = null;
            try { link = new FileInfo(next).LinkTarget; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (link is null || ++links > 40)
            {
                current = next;
                continue;
            }
            // A link's target is read relative to the folder that holds the link; its parts replace the link's.
            string resolved = Path.GetFullPath(link, current);
            string resolvedRoot = Path.GetPathRoot(resolved) ?? "";
            foreach (string p in resolved[resolvedRoot.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse())
                pending.Push(p);
            current = resolvedRoot;
        }
        return current;
    }
}
