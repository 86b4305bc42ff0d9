using SkiaSharp;

namespace Ddpm.Data;

/// <summary>
/// Every PNG and JPEG under a folder (subfolders included) as one <see cref="ImageSet"/> of
/// size x size images: each image is decoded with SkiaSharp, its centred square (side = the shorter
/// side) is resampled to size x size, and the result is kept as RGB (3 channels) or as luminance
/// (1 channel). That is the same as "resize the shorter side to size, then centre-crop".
/// </summary>
/// <remarks>
/// <para>Order is deterministic: paths relative to the folder, '/'-separated, sorted ordinally.
/// Files and folders whose names start with '.' are skipped (editor and OS droppings).</para>
/// <para>Classes: when every image lies in a subfolder and there are at least two, each top-level subfolder is a class
/// (label i = the i-th name in ordinal order, the torchvision ImageFolder convention), so class-conditional models can
/// train on the folder.</para>
/// <para>Resampling is Skia's: 2x2 averages while the square is at least twice the size, then Catmull-Rom
/// (a = -0.5, PIL's "bicubic"), so large reductions average every source pixel instead of aliasing.
/// The centred square starts at a whole pixel (its offset rounded down).</para>
/// <para>Transparent pixels are composited over black. Luminance is ITU-R BT.601:
/// Y = 0.299 R + 0.587 G + 0.114 B, rounded. EXIF orientation is not applied.</para>
/// </remarks>
public static class ImageFolder
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// The largest image decoded (4096 x 4096 pixels): checked from the header before any pixel memory is taken, so a file
    /// that claims 20000 x 20000 costs nothing (decoding one takes 16 bytes a pixel, and two decode at once). The same limit
    /// holds for every image ddpm reads (sample grids and .npy arrays included).
    /// </summary>
    public const long MaxPixels = Ddpm.Imaging.ImageLimits.MaxPixels;

    /// <summary>Loads every image under <paramref name="folder"/> as <paramref name="channels"/> x size x size.</summary>
    /// <param name="folder">The folder to search, subfolders included.</param>
    /// <param name="size">Height and width of the loaded images in pixels (&gt;= 1).</param>
    /// <param name="channels">3 for RGB, 1 for grayscale (luminance).</param>
    /// <param name="log">Receives a line saying how many images are being decoded.</param>
    public static ImageSet Load(string folder, int size, int channels = 3, Action<string>? log = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "size must be >= 1.");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 (grayscale) or 3 (RGB).");
        var files = FindImages(folder);
        if (files.Count == 0)
            throw DataFormat.Error(folder, "holds no images: looked for *.png, *.jpg and *.jpeg in it and in its subfolders.");
        long imageBytes = (long)channels * size * size;
        if (files.Count * imageBytes > Array.MaxLength)
            throw new ArgumentException($"{files.Count} images of {channels}x{size}x{size} do not fit in one array; use a smaller size or fewer images.", nameof(size));
        log?.Invoke($"Decoding {files.Count} images from {folder} to {channels}x{size}x{size}.");

        var pixels = new byte[files.Count * imageBytes];
        var errors = new Exception?[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            try { DecodeInto(files[i], size, channels, pixels.AsSpan((int)(i * imageBytes), (int)imageBytes)); }
            catch (Exception e) { errors[i] = e; }
        });
        var first = errors.FirstOrDefault(e => e is not null);
        if (first is not null)
        {
            if (first is InvalidDataException) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw DataFormat.Error(files[Array.IndexOf(errors, first)], $"could not be read: {first.Message}", first);
        }
        var images = new ImageSet(pixels, files.Count, channels, size, size);
        var classes = ClassesOf(folder, files);
        return classes is null ? images : images.WithLabels(classes.Value.Labels, classes.Value.Names);
    }

    /// <summary>The class of each file by its top-level subfolder, or null when some image is not in one or there is one class only.</summary>
    public static (byte[] Labels, IReadOnlyList<string> Names)? ClassesOf(string folder, IReadOnlyList<string> files)
    {
        var tops = new string[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            string relative = Path.GetRelativePath(folder, files[i]).Replace('\\', '/');
            int slash = relative.IndexOf('/');
            if (slash < 0) return null;
            tops[i] = relative[..slash];
        }
        var names = tops.Distinct().OrderBy(n => n, StringComparer.Ordinal).ToArray();
        if (names.Length < 2) return null;
        if (names.Length > 256)
            throw DataFormat.Error(folder, $"has {names.Length} class subfolders; labels are bytes, so at most 256 classes are supported.");
        var index = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => (byte)p.i, StringComparer.Ordinal);
        return (tops.Select(t => index[t]).ToArray(), names);
    }

    /// <summary>The PNG and JPEG files under <paramref name="folder"/>, in the order <see cref="Load"/> uses.</summary>
    public static IReadOnlyList<string> FindImages(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Image folder not found: {folder}");
        var found = new List<(string Key, string Path)>();
        var pending = new Stack<string>();
        pending.Push(folder);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var sub in Directory.EnumerateDirectories(dir))
                if (!Path.GetFileName(sub).StartsWith('.')) pending.Push(sub);
            foreach (var file in Directory.EnumerateFiles(dir))
            {
                var name = Path.GetFileName(file);
                if (name.StartsWith('.')) continue;
                if (!Extensions.Contains(Path.GetExtension(name), StringComparer.OrdinalIgnoreCase)) continue;
                found.Add((Path.GetRelativePath(folder, file).Replace('\\', '/'), file));
            }
        }
        return found.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => f.Path).ToList();
    }

    /// <summary>Decodes one file and writes its channels x size x size bytes ([C, H, W]) into <paramref name="target"/>.</summary>
    public static void DecodeInto(string path, int size, int channels, Span<byte> target)
    {
        using var codec = SKCodec.Create(path)
            ?? throw DataFormat.Error(path, "is not a decodable PNG or JPEG image.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        if (info.Width < 1 || info.Height < 1)
            throw DataFormat.Error(path, $"has an empty image ({info.Width}x{info.Height}).");
        Ddpm.Imaging.ImageLimits.Check(path, info.Width, info.Height);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput)
            throw DataFormat.Error(path, "is truncated (the decoder ran out of data).");
        if (result != SKCodecResult.Success)
            throw DataFormat.Error(path, $"could not be decoded ({result}).");

        using var resized = CentreSquare(bitmap, size);
        // Premultiplied RGBA with the alpha dropped is the image composited over black.
        ReadOnlySpan<byte> rgba = resized.GetPixelSpan();
        int n = size * size;
        if (channels == 3)
        {
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < n; i++) target[c * n + i] = rgba[4 * i + c];
        }
        else
        {
            for (int i = 0; i < n; i++)
                target[i] = ToByte(0.299f * rgba[4 * i] + 0.587f * rgba[4 * i + 1] + 0.114f * rgba[4 * i + 2]);
        }
    }

    /// <summary>
    /// The centred square of <paramref name="image"/> resized to size x size by Skia: halved (at exactly 2:1 Skia's linear
    /// filter averages 2x2 blocks) while it is at least twice the size, then Catmull-Rom. Cubic sampling alone does not
    /// average when it shrinks: a 1-pixel checkerboard shrunk from 300 to 28 pixels came out 0..255 instead of gray.
    /// </summary>
    private static SKBitmap CentreSquare(SKBitmap image, int size)
    {
        int side = Math.Min(image.Width, image.Height);
        var current = new SKBitmap();
        if (!image.ExtractSubset(current, SKRectI.Create((image.Width - side) / 2, (image.Height - side) / 2, side, side)))
            throw new InvalidOperationException("SkiaSharp could not crop the image.");
        try
        {
            while (current.Width >= 2 * size)
            {
                int half = (current.Width + 1) / 2;
                var halved = current.Resize(new SKSizeI(half, half), new SKSamplingOptions(SKFilterMode.Linear))
                    ?? throw new InvalidOperationException("SkiaSharp could not resize the image.");
                current.Dispose();
                current = halved;
            }
            return current.Resize(new SKSizeI(size, size), new SKSamplingOptions(SKCubicResampler.CatmullRom))
                ?? throw new InvalidOperationException("SkiaSharp could not resize the image.");
        }
        finally { current.Dispose(); }
    }

    private static byte ToByte(float v) => v <= 0f ? (byte)0 : v >= 255f ? (byte)255 : (byte)(v + 0.5f);
}
