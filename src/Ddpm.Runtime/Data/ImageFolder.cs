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
/// <para>Resampling is separable Catmull-Rom (a = -0.5, PIL's "bicubic"), with the kernel widened by
/// the reduction factor when shrinking, so large reductions average every source pixel instead of
/// aliasing. It is our own code, so the bytes do not depend on the Skia build.</para>
/// <para>Transparent pixels are composited over black. Luminance is ITU-R BT.601:
/// Y = 0.299 R + 0.587 G + 0.114 B, rounded. EXIF orientation is not applied.</para>
/// </remarks>
public static class ImageFolder
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// The largest image decoded (4096 x 4096 pixels): checked from the header before any pixel memory is taken, so a file
    /// that claims 20000 x 20000 costs nothing (decoding one takes 16 bytes a pixel, and two decode at once).
    /// </summary>
    public const long MaxPixels = 4096L * 4096;

    /// <summary>Loads every image under <paramref name="folder"/> as <paramref name="channels"/> x size x size.</summary>
    /// <param name="channels">3 for RGB, 1 for grayscale (luminance).</param>
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
        return new ImageSet(pixels, files.Count, channels, size, size);
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
        if ((long)info.Width * info.Height > MaxPixels)
            throw DataFormat.Error(path, $"is {info.Width}x{info.Height} pixels, more than the {MaxPixels:N0} this loader decodes; shrink it first.");
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput)
            throw DataFormat.Error(path, "is truncated (the decoder ran out of data).");
        if (result != SKCodecResult.Success)
            throw DataFormat.Error(path, $"could not be decoded ({result}).");

        // Premultiplied RGBA with the alpha dropped is the image composited over black.
        ReadOnlySpan<byte> rgba = bitmap.GetPixelSpan();
        int w = info.Width, h = info.Height, side = Math.Min(w, h);
        var planes = new float[3][];
        for (int c = 0; c < 3; c++)
        {
            var plane = planes[c] = new float[w * h];
            for (int i = 0; i < plane.Length; i++) plane[i] = rgba[4 * i + c];
        }
        // The centred square starts at a possibly fractional offset; resampling handles it exactly.
        var rows = Resampler.Weights(w, (w - side) / 2.0, side, size);
        var cols = Resampler.Weights(h, (h - side) / 2.0, side, size);
        var resized = new float[3][];
        for (int c = 0; c < 3; c++) resized[c] = Resampler.Resample(planes[c], w, h, rows, cols, size);

        int n = size * size;
        if (channels == 3)
        {
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < n; i++) target[c * n + i] = ToByte(resized[c][i]);
        }
        else
        {
            for (int i = 0; i < n; i++)
                target[i] = ToByte(0.299f * ToByte(resized[0][i]) + 0.587f * ToByte(resized[1][i]) + 0.114f * ToByte(resized[2][i]));
        }
    }

    private static byte ToByte(float v) => v <= 0f ? (byte)0 : v >= 255f ? (byte)255 : (byte)(v + 0.5f);

    /// <summary>Separable antialiased Catmull-Rom resampling of a window of a plane.</summary>
    private static class Resampler
    {
        public sealed record Taps(int[] Start, float[][] Weights);

        /// <summary>Taps mapping the source window [offset, offset + extent) of a line of <paramref name="length"/> pixels to <paramref name="outSize"/> pixels.</summary>
        public static Taps Weights(int length, double offset, int extent, int outSize)
        {
            double scale = (double)extent / outSize;       // source pixels per output pixel
            double stretch = Math.Max(scale, 1.0);           // widen the kernel when shrinking
            double support = 2.0 * stretch;                  // Catmull-Rom has radius 2
            var starts = new int[outSize];
            var weights = new float[outSize][];
            for (int o = 0; o < outSize; o++)
            {
                double centre = offset + (o + 0.5) * scale;  // in source coordinates, pixel i covers [i, i+1)
                int lo = Math.Max(0, (int)Math.Floor(centre - support));
                int hi = Math.Min(length - 1, (int)Math.Ceiling(centre + support));
                var ws = new double[hi - lo + 1];
                double sum = 0;
                for (int i = lo; i <= hi; i++) sum += ws[i - lo] = CatmullRom((i + 0.5 - centre) / stretch);
                starts[o] = lo;
                weights[o] = ws.Select(x => (float)(x / sum)).ToArray();
            }
            return new Taps(starts, weights);
        }

        public static float[] Resample(float[] plane, int w, int h, Taps xTaps, Taps yTaps, int size)
        {
            var horizontal = new float[h * size];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < size; x++)
                {
                    float acc = 0;
                    var ws = xTaps.Weights[x];
                    int row = y * w + xTaps.Start[x];
                    for (int k = 0; k < ws.Length; k++) acc += ws[k] * plane[row + k];
                    horizontal[y * size + x] = acc;
                }
            var result = new float[size * size];
            for (int y = 0; y < size; y++)
            {
                var ws = yTaps.Weights[y];
                int start = yTaps.Start[y];
                for (int x = 0; x < size; x++)
                {
                    float acc = 0;
                    for (int k = 0; k < ws.Length; k++) acc += ws[k] * horizontal[(start + k) * size + x];
                    result[y * size + x] = acc;
                }
            }
            return result;
        }

        private static double CatmullRom(double x)
        {
            const double a = -0.5;
            x = Math.Abs(x);
            if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
            if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
            return 0;
        }
    }
}
