namespace Ddpm.Data;

/// <summary>
/// A data set of same-sized images held in memory as bytes (0..255), channel-major per image
/// ([N, C, H, W] order). Bytes keep Fashion-MNIST at 47 MB and CIFAR-10 at 150 MB.
/// </summary>
public sealed class ImageSet
{
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

    public byte[] Pixels { get; }
    public int Count { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int ImageBytes => Channels * Height * Width;

    public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(index * ImageBytes, ImageBytes);
}
