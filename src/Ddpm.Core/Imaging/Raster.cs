using SkiaSharp;

namespace Ddpm.Imaging;

/// <summary>
/// An 8-bit picture in memory: <see cref="Channels"/> is 1 (gray) or 3 (RGB), pixels interleaved row by row
/// (<c>Pixels[(y * Width + x) * Channels + c]</c>). What <c>ImageGrid</c> renders and
/// <c>AnimatedGif</c> encodes.
/// </summary>
public sealed class Raster
{
    /// <summary>Creates a picture, black unless <paramref name="pixels"/> are given.</summary>
    /// <param name="width">Width in pixels (&gt;= 1).</param>
    /// <param name="height">Height in pixels (&gt;= 1).</param>
    /// <param name="channels">1 (gray) or 3 (RGB).</param>
    /// <param name="pixels">width * height * channels bytes, interleaved row by row (used, not copied); null for a new black picture.</param>
    public Raster(int width, int height, int channels, byte[]? pixels = null)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"Raster size must be positive, got {width}x{height}.");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 (gray) or 3 (RGB).");
        long bytes = (long)width * height * channels;
        if (bytes > Array.MaxLength) throw new ArgumentException($"A {width}x{height}x{channels} raster is too large.");
        pixels ??= new byte[bytes];
        if (pixels.LongLength != bytes)
            throw new ArgumentException($"Expected {bytes} bytes for {width}x{height}x{channels}, got {pixels.LongLength}.", nameof(pixels));
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>1 (gray) or 3 (RGB).</summary>
    public int Channels { get; }
    /// <summary>The pixel bytes, interleaved row by row: <c>Pixels[(y * Width + x) * Channels + c]</c>; writable, not a copy.</summary>
    public byte[] Pixels { get; }

    /// <summary>The same picture, each pixel repeated into a <paramref name="factor"/> x <paramref name="factor"/> block.</summary>
    public Raster Upscale(int factor)
    {
        if (factor < 1) throw new ArgumentOutOfRangeException(nameof(factor), factor, "scale must be >= 1.");
        if (factor == 1) return this;
        var result = new Raster(Width * factor, Height * factor, Channels);
        int c = Channels, rowBytes = result.Width * c;
        for (int y = 0; y < Height; y++)
        {
            var target = result.Pixels.AsSpan(y * factor * rowBytes, rowBytes);
            for (int x = 0; x < Width; x++)
                for (int f = 0; f < factor; f++)
                    Pixels.AsSpan((y * Width + x) * c, c).CopyTo(target[((x * factor + f) * c)..]);
            for (int f = 1; f < factor; f++)
                target.CopyTo(result.Pixels.AsSpan((y * factor + f) * rowBytes, rowBytes));
        }
        return result;
    }

    /// <summary>Writes a PNG (8-bit gray or RGB) with SkiaSharp, creating the folder if needed.</summary>
    public void SavePng(string path)
    {
        using var bitmap = ToBitmap();
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new IOException($"{path}: SkiaSharp could not encode the PNG.");
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>A SkiaSharp bitmap of the picture: Gray8 for one channel, opaque RGBA8888 for three.</summary>
    public SKBitmap ToBitmap()
    {
        var info = Channels == 1
            ? new SKImageInfo(Width, Height, SKColorType.Gray8, SKAlphaType.Opaque)
            : new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var bitmap = new SKBitmap(info);
        var target = bitmap.GetPixelSpan();
        int rowBytes = bitmap.RowBytes;
        for (int y = 0; y < Height; y++)
        {
            var row = target.Slice(y * rowBytes);
            if (Channels == 1)
            {
                Pixels.AsSpan(y * Width, Width).CopyTo(row);
                continue;
            }
            for (int x = 0; x < Width; x++)
            {
                int s = (y * Width + x) * 3;
                row[4 * x] = Pixels[s];
                row[4 * x + 1] = Pixels[s + 1];
                row[4 * x + 2] = Pixels[s + 2];
                row[4 * x + 3] = 255;
            }
        }
        return bitmap;
    }
}
