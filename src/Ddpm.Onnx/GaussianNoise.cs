namespace Ddpm.Onnx;

/// <summary>Where a sampler's standard normal noise comes from: the starting x_T, then each step's noise, in the order drawn.</summary>
public interface IGaussianNoise
{
    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) draws.</summary>
    void Fill(Span<float> destination);
}

/// <summary>
/// Seeded standard normal noise (Marsaglia's polar method over <see cref="Random"/>): the same seed gives the same images
/// on every machine. It is not libtorch's generator, so a seed draws other images here than in <c>ddpm sample</c> of the
/// checkpoint; pass an <see cref="IGaussianNoise"/> of your own to replay another generator's noise.
/// </summary>
public sealed class GaussianNoise : IGaussianNoise
{
    private readonly Random random;
    private double? spare;

    /// <summary>Creates the generator from <paramref name="seed"/>.</summary>
    public GaussianNoise(long seed) => random = new Random(unchecked((int)(seed ^ (seed >> 32))));

    /// <inheritdoc/>
    public void Fill(Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
            destination[i] = (float)Next();
    }

    private double Next()
    {
        if (spare is double kept)
        {
            spare = null;
            return kept;
        }
        double u, v, s;
        do
        {
            u = 2 * random.NextDouble() - 1;
            v = 2 * random.NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double factor = Math.Sqrt(-2 * Math.Log(s) / s);
        spare = v * factor;
        return u * factor;
    }
}
