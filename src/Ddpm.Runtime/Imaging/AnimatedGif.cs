using static TorchSharp.torch;

namespace Ddpm.Imaging;

/// <summary>
/// A small GIF89a writer for animations such as a denoising sequence: one global 256-colour palette,
/// full-size frames, LZW-compressed, looping. One-channel frames use 256 grays, which is exact;
/// three-channel frames use a fixed palette (a 6x6x6 colour cube plus 40 grays) with each pixel
/// mapped to its nearest entry, no dithering.
/// </summary>
/// <example><code>
/// using (var gif = new AnimatedGif("denoise.gif"))
///     foreach (var x in steps) gif.AddFrame(x, scale: 2);
/// </code></example>
public sealed class AnimatedGif : IDisposable
{
    private readonly Stream stream;
    private readonly int frameDelayMs;
    private readonly bool loop;
    private readonly LzwEncoder lzw = new();
    private int width, height, channels;
    private bool disposed;

    /// <param name="frameDelayMs">Default time each frame shows (GIF stores hundredths of a second; at least 20 ms).</param>
    /// <param name="loop">Repeat forever (the NETSCAPE2.0 extension) or play once.</param>
    public AnimatedGif(string path, int frameDelayMs = 100, bool loop = true)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        stream = new BufferedStream(File.Create(path));
        this.frameDelayMs = frameDelayMs;
        this.loop = loop;
    }

    public int FrameCount { get; private set; }

    /// <summary>Writes a whole animation: every frame for <paramref name="frameDelayMs"/>, the last one for <paramref name="lastFrameDelayMs"/>.</summary>
    public static void Save(string path, IEnumerable<Raster> frames, int frameDelayMs = 100, int lastFrameDelayMs = 2000, bool loop = true)
    {
        using var gif = new AnimatedGif(path, frameDelayMs, loop);
        Raster? previous = null;
        foreach (var frame in frames)
        {
            if (previous is not null) gif.AddFrame(previous);
            previous = frame;
        }
        if (previous is null) throw new ArgumentException("An animation needs at least one frame.", nameof(frames));
        gif.AddFrame(previous, lastFrameDelayMs);
    }

    /// <summary>
    /// Writes a denoising sequence: each tensor [N, C, H, W] in [-1, 1] (e.g. x_T, ..., x_0) becomes one grid frame
    /// (see <see cref="ImageGrid"/>); the final frame is held for <paramref name="lastFrameDelayMs"/>.
    /// </summary>
    public static void SaveDenoising(string path, IEnumerable<Tensor> steps, int columns = 8, int padding = 2, int scale = 1,
        int frameDelayMs = 80, int lastFrameDelayMs = 2000)
        => Save(path, steps.Select(t => ImageGrid.Render(t, columns, padding, scale)), frameDelayMs, lastFrameDelayMs);

    /// <summary>Adds the grid of a batch [N, C, H, W] in [-1, 1] as one frame.</summary>
    public void AddFrame(Tensor images, int columns = 8, int padding = 2, int scale = 1, int? delayMs = null)
        => AddFrame(ImageGrid.Render(images, columns, padding, scale), delayMs);

    /// <summary>Adds one frame; every frame must have the first one's size and channel count.</summary>
    public void AddFrame(Raster frame, int? delayMs = null)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (FrameCount == 0)
        {
            if (frame.Width > ushort.MaxValue || frame.Height > ushort.MaxValue)
                throw new ArgumentException($"GIF frames are at most 65535 pixels a side, got {frame.Width}x{frame.Height}.", nameof(frame));
            (width, height, channels) = (frame.Width, frame.Height, frame.Channels);
            WriteHeader();
        }
        else if (frame.Width != width || frame.Height != height || frame.Channels != channels)
            throw new ArgumentException($"Frame {FrameCount} is {frame.Width}x{frame.Height}x{frame.Channels}; the animation is {width}x{height}x{channels}.", nameof(frame));

        int centiseconds = Math.Clamp(((delayMs ?? frameDelayMs) + 5) / 10, 2, ushort.MaxValue);
        // Graphic Control Extension: disposal 1 (leave the frame), no transparency, the delay.
        stream.Write([0x21, 0xF9, 0x04, 0x04, (byte)centiseconds, (byte)(centiseconds >> 8), 0x00, 0x00]);
        // Image Descriptor: the whole screen, no local colour table, not interlaced.
        stream.Write([0x2C, 0, 0, 0, 0, (byte)width, (byte)(width >> 8), (byte)height, (byte)(height >> 8), 0x00]);
        lzw.Encode(Palette.Indices(frame), stream);
        FrameCount++;
    }

    /// <summary>Writes the trailer and closes the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        try
        {
            if (FrameCount > 0) stream.WriteByte(0x3B);
        }
        finally { stream.Dispose(); }
    }

    private void WriteHeader()
    {
        stream.Write("GIF89a"u8);
        // Logical Screen Descriptor: global colour table of 256 entries (flags 0xF7), background 0, square pixels.
        stream.Write([(byte)width, (byte)(width >> 8), (byte)height, (byte)(height >> 8), 0xF7, 0x00, 0x00]);
        stream.Write(channels == 1 ? Palette.Gray : Palette.Colour);
        if (loop) // NETSCAPE2.0 application extension: loop count 0 = forever
            stream.Write([0x21, 0xFF, 0x0B, .. "NETSCAPE2.0"u8, 0x03, 0x01, 0x00, 0x00, 0x00]);
    }

    /// <summary>The two fixed palettes and the mapping of pixels to palette indices.</summary>
    internal static class Palette
    {
        private const int CubeLevels = 6, CubeStep = 51, ExtraGrays = 40;

        /// <summary>256 grays: entry i is (i, i, i).</summary>
        public static readonly byte[] Gray = MakeGray();

        /// <summary>Entries 0..215: r * 36 + g * 6 + b for levels 0, 51, ..., 255; entries 216..255: grays round((j + 1) * 255 / 41).</summary>
        public static readonly byte[] Colour = MakeColour();

        private static byte[] MakeGray()
        {
            var p = new byte[768];
            for (int i = 0; i < 256; i++) p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = (byte)i;
            return p;
        }

        private static byte[] MakeColour()
        {
            var p = new byte[768];
            for (int i = 0; i < 216; i++)
            {
                p[3 * i] = (byte)(i / 36 * CubeStep);
                p[3 * i + 1] = (byte)(i / 6 % 6 * CubeStep);
                p[3 * i + 2] = (byte)(i % 6 * CubeStep);
            }
            for (int j = 0; j < ExtraGrays; j++)
                p[3 * (216 + j)] = p[3 * (216 + j) + 1] = p[3 * (216 + j) + 2] = ExtraGray(j);
            return p;
        }

        private static byte ExtraGray(int j) => (byte)Math.Round((j + 1) * 255.0 / (ExtraGrays + 1));

        public static byte[] Indices(Raster frame)
        {
            var pixels = frame.Pixels;
            if (frame.Channels == 1) return pixels;
            var indices = new byte[frame.Width * frame.Height];
            for (int i = 0; i < indices.Length; i++)
                indices[i] = Nearest(pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]);
            return indices;
        }

        /// <summary>The palette entry nearest to (r, g, b) in squared RGB distance: the nearest cube colour or the nearest extra gray.</summary>
        public static byte Nearest(int r, int g, int b)
        {
            int ri = (r + CubeStep / 2) / CubeStep, gi = (g + CubeStep / 2) / CubeStep, bi = (b + CubeStep / 2) / CubeStep;
            int best = ri * 36 + gi * 6 + bi;
            int bestError = Sq(r - ri * CubeStep) + Sq(g - gi * CubeStep) + Sq(b - bi * CubeStep);
            int centre = (int)Math.Round((r + g + b) / 3.0 * (ExtraGrays + 1) / 255.0) - 1;
            for (int j = Math.Max(0, centre - 1); j <= Math.Min(ExtraGrays - 1, centre + 1); j++)
            {
                int v = ExtraGray(j), error = Sq(r - v) + Sq(g - v) + Sq(b - v);
                if (error < bestError) (best, bestError) = (216 + j, error);
            }
            return (byte)best;
        }

        private static int Sq(int x) => x * x;
    }

    /// <summary>
    /// GIF's variable-length LZW (8-bit symbols): codes start at 9 bits and grow to 12; 256 is Clear,
    /// 257 End of Information; when the table is full a Clear restarts it. Output is packed least
    /// significant bit first into sub-blocks of at most 255 bytes.
    /// </summary>
    internal sealed class LzwEncoder
    {
        private const int MinCodeSize = 8, ClearCode = 256, EndCode = 257, FirstFree = 258, MaxCodes = 4096;
        private readonly Dictionary<int, int> table = new();
        private readonly byte[] block = new byte[255];
        private int blockLength, bitBuffer, bitCount;
        private Stream output = Stream.Null;

        public void Encode(ReadOnlySpan<byte> indices, Stream stream)
        {
            output = stream;
            output.WriteByte(MinCodeSize);
            blockLength = bitBuffer = bitCount = 0;

            int codeSize = MinCodeSize + 1, next = FirstFree;
            table.Clear();
            Emit(ClearCode, codeSize);
            int prefix = indices[0];
            for (int i = 1; i < indices.Length; i++)
            {
                int symbol = indices[i], key = (prefix << 8) | symbol;
                if (table.TryGetValue(key, out int code))
                {
                    prefix = code;
                    continue;
                }
                Emit(prefix, codeSize);
                if (next < MaxCodes)
                {
                    table[key] = next++;
                    // The decoder adds this entry one code later, and widens its codes once its table
                    // reaches 2^codeSize entries; so we widen when `next` passes 2^codeSize.
                    if (next > (1 << codeSize) && codeSize < 12) codeSize++;
                }
                else
                {
                    Emit(ClearCode, codeSize);
                    table.Clear();
                    next = FirstFree;
                    codeSize = MinCodeSize + 1;
                }
                prefix = symbol;
            }
            Emit(prefix, codeSize);
            // The decoder adds an entry on reading that last code (unless it is the first after a Clear,
            // where next is still FirstFree and no widening can happen), and may widen before End.
            if (next < MaxCodes && next + 1 > (1 << codeSize) && codeSize < 12) codeSize++;
            Emit(EndCode, codeSize);
            if (bitCount > 0) Put((byte)bitBuffer);
            Flush();
            output.WriteByte(0); // block terminator
        }

        private void Emit(int code, int size)
        {
            bitBuffer |= code << bitCount;
            bitCount += size;
            while (bitCount >= 8)
            {
                Put((byte)bitBuffer);
                bitBuffer >>= 8;
                bitCount -= 8;
            }
        }

        private void Put(byte b)
        {
            block[blockLength++] = b;
            if (blockLength == block.Length) Flush();
        }

        private void Flush()
        {
            if (blockLength == 0) return;
            output.WriteByte((byte)blockLength);
            output.Write(block, 0, blockLength);
            blockLength = 0;
        }
    }
}
