using Ddpm.Data;

namespace Ddpm.Imaging;

/// <summary>
/// The one limit on the size of an image ddpm decodes, whatever reads it (image folders, PNG and JPEG files, sample grids,
/// .npy arrays of images): checked from the file's header before any pixel memory is taken, so a file that claims
/// 20000 x 20000 pixels costs nothing, and refused with one message.
/// </summary>
internal static class ImageLimits
{
    /// <summary>The most pixels in one image: 4096 x 4096 (decoding takes up to 16 bytes a pixel, and two decode at once).</summary>
    public const long MaxPixels = 4096L * 4096;

    /// <summary>Throws the one <see cref="InvalidDataException"/> for an image of <paramref name="width"/> x <paramref name="height"/> over the limit.</summary>
    public static void Check(string path, long width, long height)
    {
        if (width > 0 && height > 0 && width > MaxPixels / height)
            throw DataFormat.Error(path, $"is {width}x{height} pixels, more than the {MaxPixels:N0} (4096 x 4096) that ddpm decodes; shrink it first.");
    }
}
