using Ddpm.Evaluation;

namespace Ddpm.Runtime.Tests.Evaluation;

/// <summary>Feature sets for the metric tests, from System.Random (deterministic for a seed, no torch RNG).</summary>
internal static class Features
{
    /// <summary>n vectors of d independent N(shift, scale^2) values (Box-Muller).</summary>
    public static FeatureSet Gaussian(int n, int d, int seed, double shift = 0, double scale = 1)
    {
        var random = new Random(seed);
        var values = new double[n * d];
        for (int i = 0; i < values.Length; i++)
        {
            double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = shift + scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        return new FeatureSet(values, n, d);
    }

    /// <summary>One-dimensional vectors at the given points.</summary>
    public static FeatureSet Line(params double[] points) => new(points, points.Length, 1);
}
