using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace Ddpm.Evaluation;

/// <summary>
/// The Frechet distance between two Gaussians N(mu1, S1) and N(mu2, S2), the "F" of FID (Heusel et al. 2017):
/// <code>d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^{1/2} )</code>
/// </summary>
/// <remarks>
/// pytorch-fid takes <c>scipy.linalg.sqrtm(S1 S2)</c> of a non-symmetric product, which fails or turns complex
/// when a covariance is near singular (fewer samples than dimensions, dead features) and needs an epsilon
/// offset. Here the trace term comes from symmetric matrices only: S1 S2 is similar to
/// <c>M = S1^{1/2} S2 S1^{1/2}</c> (symmetric, positive semi-definite), so
/// <code>tr (S1 S2)^{1/2} = sum_i sqrt(max(lambda_i(M), 0))</code>
/// with S1^{1/2} and the lambda_i from symmetric eigendecompositions (MathNet.Numerics). Eigenvalues that
/// rounding pushes below zero are clamped to zero, so rank-deficient covariances are exact, not an error.
/// Float64 throughout; the result is clamped at 0 (the distance is never negative, rounding can make it -1e-13).
/// </remarks>
public static class FrechetDistance
{
    /// <summary>d^2 between two fitted Gaussians: the FID when they are fitted to generated and real features.</summary>
    /// <returns>The squared Frechet distance, &gt;= 0.</returns>
    /// <exception cref="ArithmeticException">The statistics hold NaN or infinite values.</exception>
    public static double Compute(GaussianFit a, GaussianFit b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return Compute(a.Mean, a.Covariance, b.Mean, b.Covariance);
    }

    /// <summary>d^2 between N(<paramref name="mean1"/>, <paramref name="covariance1"/>) and N(<paramref name="mean2"/>, <paramref name="covariance2"/>).</summary>
    /// <param name="mean1">Mean of the first Gaussian, length d.</param>
    /// <param name="covariance1">Covariance of the first Gaussian, d x d, symmetric positive semi-definite.</param>
    /// <param name="mean2">Mean of the second Gaussian, length d.</param>
    /// <param name="covariance2">Covariance of the second Gaussian, d x d, symmetric positive semi-definite.</param>
    /// <returns>The squared Frechet distance, &gt;= 0.</returns>
    /// <exception cref="ArgumentException">The dimensions differ.</exception>
    /// <exception cref="ArithmeticException">The statistics hold NaN or infinite values.</exception>
    public static double Compute(double[] mean1, double[,] covariance1, double[] mean2, double[,] covariance2)
    {
        ArgumentNullException.ThrowIfNull(mean1);
        ArgumentNullException.ThrowIfNull(mean2);
        int d = mean1.Length;
        if (mean2.Length != d)
            throw new ArgumentException($"The means have dimensions {d} and {mean2.Length}.", nameof(mean2));
        CheckCovariance(covariance1, d, nameof(covariance1));
        CheckCovariance(covariance2, d, nameof(covariance2));

        double meanTerm = 0;
        for (int i = 0; i < d; i++)
        {
            double diff = mean1[i] - mean2[i];
            meanTerm += diff * diff;
        }
        double traces = 0;
        for (int i = 0; i < d; i++) traces += covariance1[i, i] + covariance2[i, i];
        double distance = meanTerm + traces - 2 * TraceSqrtProduct(covariance1, covariance2);
        if (!double.IsFinite(distance))
            throw new ArithmeticException("The Frechet distance is not finite: the features hold NaN or infinite values.");
        return Math.Max(0, distance);
    }

    /// <summary>
    /// tr((S1 S2)^{1/2}) for symmetric positive semi-definite S1 and S2, via the symmetric matrix
    /// S1^{1/2} S2 S1^{1/2}: sum of the square roots of its eigenvalues, negative ones (rounding) taken as 0.
    /// </summary>
    public static double TraceSqrtProduct(double[,] covariance1, double[,] covariance2)
    {
        ArgumentNullException.ThrowIfNull(covariance1);
        ArgumentNullException.ThrowIfNull(covariance2);
        int d = covariance1.GetLength(0);
        CheckCovariance(covariance1, d, nameof(covariance1));
        CheckCovariance(covariance2, d, nameof(covariance2));

        var s1 = Symmetric(Matrix<double>.Build.DenseOfArray(covariance1));
        var s2 = Symmetric(Matrix<double>.Build.DenseOfArray(covariance2));
        var root = SymmetricSqrt(s1);
        var m = Symmetric(root * s2 * root);
        double trace = 0;
        foreach (double lambda in Eigenvalues(m))
            trace += Math.Sqrt(Math.Max(lambda, 0));
        return trace;
    }

    /// <summary>A^{1/2} = V diag(sqrt(max(lambda, 0))) V^T for a symmetric A = V diag(lambda) V^T.</summary>
    internal static Matrix<double> SymmetricSqrt(Matrix<double> a)
    {
        var evd = a.Evd(Symmetricity.Symmetric);
        var v = evd.EigenVectors;
        var roots = Vector<double>.Build.Dense(a.RowCount, i => Math.Sqrt(Math.Max(evd.EigenValues[i].Real, 0)));
        return Symmetric(v * Matrix<double>.Build.DiagonalOfDiagonalVector(roots) * v.Transpose());
    }

    private static IEnumerable<double> Eigenvalues(Matrix<double> symmetric)
        => symmetric.Evd(Symmetricity.Symmetric).EigenValues.Select(c => c.Real);

    /// <summary>(A + A^T) / 2: removes the asymmetry rounding leaves, so the symmetric solver sees a symmetric matrix.</summary>
    private static Matrix<double> Symmetric(Matrix<double> a) => (a + a.Transpose()) * 0.5;

    private static void CheckCovariance(double[,] covariance, int d, string name)
    {
        ArgumentNullException.ThrowIfNull(covariance, name);
        if (covariance.GetLength(0) != d || covariance.GetLength(1) != d)
            throw new ArgumentException($"Expected a {d}x{d} covariance, got {covariance.GetLength(0)}x{covariance.GetLength(1)}.", name);
        foreach (double v in covariance)
            if (!double.IsFinite(v))
                throw new ArithmeticException($"The covariance {name} holds NaN or infinite values: the features are not finite.");
    }
}
