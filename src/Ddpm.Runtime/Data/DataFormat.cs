namespace Ddpm.Data;

/// <summary>
/// Builds the one exception type that every reader here throws for a bad data file:
/// <see cref="InvalidDataException"/>, its message the file's path, a colon, and what is wrong, e.g.
/// "train-images-idx3-ubyte: expected 47040016 bytes for 60000 images of 28x28, found 1000".
/// </summary>
internal static class DataFormat
{
    public static InvalidDataException Error(string path, string problem, Exception? inner = null)
        => new($"{path}: {problem}", inner);
}
