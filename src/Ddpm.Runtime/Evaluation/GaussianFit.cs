namespace Ddpm.Evaluation;

/// <summary>
/// The Gaussian fitted to a feature set: its mean and its unbiased covariance (divided by n - 1, as
/// numpy's <c>np.cov</c>, which pytorch-fid uses). Float64 throughout.
/// </summary>
/// <param name="Mean">The mean feature vector, of length d.</param>
/// <param name="Covariance">The unbiased d x d covariance.</param>
/// <param name="Count">Number of vectors fitted.</param>
public sealed record GaussianFit(double[] Mean, double[,] Covariance, int Count)
{
    /// <summary>The feature dimension d.</summary>
    public int Dimension => Mean.Length;

    /// <summary>Fits mean and covariance to <paramref name="features"/> (at least 2 vectors).</summary>
    public static GaussianFit Fit(FeatureSet features)
    {
        ArgumentNullException.ThrowIfNull(features);
        int n = features.Count, d = features.Dimension;
        if (n < 2)
            throw new ArgumentException($"A covariance needs at least 2 feature vectors, got {n}.", nameof(features));
        var mean = new double[d];
        for (int i = 0; i < n; i++)
        {
            var row = features.Row(i);
            for (int j = 0; j < d; j++) mean[j] += row[j];
        }
        for (int j = 0; j < d; j++) mean[j] /= n;

        // Sum of outer products of the centred rows, upper triangle only, then mirrored.
        var sums = new double[d * d];
        var centred = new double[d];
        for (int i = 0; i < n; i++)
        {
            var row = features.Row(i);
            for (int j = 0; j < d; j++) centred[j] = row[j] - mean[j];
            for (int a = 0; a < d; a++)
            {
                double ca = centred[a];
                if (ca == 0) continue;
                var target = sums.AsSpan(a * d, d);
                for (int b = a; b < d; b++) target[b] += ca * centred[b];
            }
        }
        var covariance = new double[d, d];
        for (int a = 0; a < d; a++)
            for (int b = a; b < d; b++)
                covariance[a, b] = covariance[b, a] = sums[a * d + b] / (n - 1);
        return new GaussianFit(mean, covariance, n);
    }
}
