namespace Ddpm;

/// <summary>
/// Drawn images without tensor types: <see cref="Values"/> holds [Count, Channels, Height, Width] row-major, in the model's
/// range (about [-1, 1]), as <c>DiffusionModel.SampleImages</c> returns them.
/// </summary>
/// <param name="Values">Count x Channels x Height x Width floats, row-major.</param>
/// <param name="Count">Images.</param>
/// <param name="Channels">Channels per image.</param>
/// <param name="Height">Rows per image.</param>
/// <param name="Width">Columns per image.</param>
public sealed record SampledImages(float[] Values, int Count, int Channels, int Height, int Width)
{
    /// <summary>The value of image <paramref name="image"/> at channel, row and column.</summary>
    public float this[int image, int channel, int y, int x] => Values[((image * Channels + channel) * Height + y) * Width + x];

    /// <summary>Image <paramref name="image"/> as bytes 0..255 ([C, H, W]), mapped from [-1, 1] and clamped, as the PNG grids are.</summary>
    public byte[] ToBytes(int image)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(image);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(image, Count);
        int length = Channels * Height * Width;
        var bytes = new byte[length];
        for (int i = 0; i < length; i++) bytes[i] = Imaging.GridLayout.ToByte(Values[image * length + i]);
        return bytes;
    }
}
