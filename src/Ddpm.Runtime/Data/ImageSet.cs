namespace Ddpm.Data;

/// <summary>
/// A data set of same-sized images held in memory as bytes (0..255), channel-major per image
/// ([N, C, H, W] order). Bytes keep Fashion-MNIST at 47 MB and CIFAR-10 at 150 MB.
/// </summary>
public sealed class ImageSet
{
    /// <summary>Wraps <paramref name="pixels"/> (not copied) as <paramref name="count"/> images of the given shape.</summary>
    /// <param name="pixels">count * channels * height * width bytes, image after image, each channel-major (C, H, W).</param>
    /// <param name="count">Number of images (&gt;= 1).</param>
    /// <param name="channels">Channels per image (1 grayscale, 3 RGB).</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is below 1.</exception>
    /// <exception cref="ArgumentException">The pixel count does not match the shape.</exception>
    public ImageSet(byte[] pixels, int count, int channels, int height, int width)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "An image set needs at least one image.");
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(channels), $"Image shape must be positive, got {channels}x{height}x{width}.");
        if (pixels.LongLength != (long)count * channels * height * width)
            throw new ArgumentException($"Expected {(long)count * channels * height * width} bytes for {count} images of {channels}x{height}x{width}, got {pixels.LongLength}.", nameof(pixels));
        Pixels = pixels;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
    }

    /// <summary>All images as bytes 0..255 in [N, C, H, W] order; shared, not a copy.</summary>
    public byte[] Pixels { get; }
    /// <summary>Number of images N.</summary>
    public int Count { get; }
    /// <summary>Channels per image C (1 grayscale, 3 RGB).</summary>
    public int Channels { get; }
    /// <summary>Image height H in pixels.</summary>
    public int Height { get; }
    /// <summary>Image width W in pixels.</summary>
    public int Width { get; }
    /// <summary>Bytes per image: C * H * W.</summary>
    public int ImageBytes => Channels * Height * Width;

    /// <summary>The class of each image (0 .. ClassNames.Count - 1), or null for unlabelled data.</summary>
    public byte[]? Labels { get; private init; }
    /// <summary>The class names, entry i naming label i; null for unlabelled data.</summary>
    public IReadOnlyList<string>? ClassNames { get; private init; }

    /// <summary>
    /// The same images (shared, not copied) with a class per image: what a class-conditional model trains on.
    /// </summary>
    /// <param name="labels">One label per image, each below the number of class names.</param>
    /// <param name="classNames">At least 2 names, entry i naming label i.</param>
    /// <exception cref="ArgumentException">The labels do not fit the images or the names.</exception>
    public ImageSet WithLabels(byte[] labels, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (labels.Length != Count)
            throw new ArgumentException($"{labels.Length} labels for {Count} images; give one label per image.", nameof(labels));
        if (classNames.Count < 2)
            throw new ArgumentException($"Labelled data needs at least 2 classes, got {classNames.Count}.", nameof(classNames));
        int largest = labels.Length == 0 ? 0 : labels.Max();
        if (largest >= classNames.Count)
            throw new ArgumentException($"Label {largest} found, but there are {classNames.Count} class names.", nameof(labels));
        return new ImageSet(Pixels, Count, Channels, Height, Width) { Labels = labels, ClassNames = classNames.ToArray() };
    }

    /// <summary>The bytes of image <paramref name="index"/> (0-based), [C, H, W], as a view into <see cref="Pixels"/>.</summary>
    public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(index * ImageBytes, ImageBytes);
}
