using Ddpm.Evaluation;

namespace Ddpm.Runtime.Tests.Evaluation;

public class FrechetDistanceTests
{
    private static double[,] Diagonal(params double[] values)
    {
        var m = new double[values.Length, values.Length];
        for (int i = 0; i < values.Length; i++) m[i, i] = values[i];
        return m;
    }

    /// <summary>R diag(values) R^T for the orthogonal R = [[1, 2, 2], [2, 1, -2], [2, -2, 1]] / 3.</summary>
    private static double[,] Rotated(params double[] values)
    {
        double[,] r = { { 1 / 3.0, 2 / 3.0, 2 / 3.0 }, { 2 / 3.0, 1 / 3.0, -2 / 3.0 }, { 2 / 3.0, -2 / 3.0, 1 / 3.0 } };
        var m = new double[3, 3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++)
                    m[i, j] += r[i, k] * values[k] * r[j, k];
        return m;
    }

    [Fact]
    public void Diagonal_covariances_give_the_sum_of_squared_root_differences()
    {
        // |mu1 - mu2|^2 = 1 + 4 + 4 = 9; per axis (sqrt a - sqrt b)^2 = (2-1)^2 + (3-2)^2 + (1-4)^2 = 11.
        double fid = FrechetDistance.Compute([1, 2, 3], Diagonal(4, 9, 1), [0, 0, 1], Diagonal(1, 4, 16));
        Assert.Equal(20.0, fid, 1e-12);
    }

    [Fact]
    public void Non_commuting_two_by_two_matches_the_closed_form()
    {
        // For 2x2: S1 S2 is similar to a PSD M, and tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)),
        // so tr (S1 S2)^{1/2} = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
        // S1 = [[2, 1], [1, 2]], S2 = diag(1, 4): tr(S1 S2) = 2 + 8 = 10, det S1 det S2 = 3 * 4 = 12.
        double[,] s1 = { { 2, 1 }, { 1, 2 } };
        double[,] s2 = { { 1, 0 }, { 0, 4 } };
        double traceSqrt = Math.Sqrt(10 + 2 * Math.Sqrt(12));
        Assert.Equal(traceSqrt, FrechetDistance.TraceSqrtProduct(s1, s2), 1e-12);
        Assert.Equal(traceSqrt, FrechetDistance.TraceSqrtProduct(s2, s1), 1e-12);

        // Means (1, 0) and (0, 2): |mu1 - mu2|^2 = 5; traces 4 + 5.
        double fid = FrechetDistance.Compute([1, 0], s1, [0, 2], s2);
        Assert.Equal(5 + 9 - 2 * traceSqrt, fid, 1e-12);
    }

    [Fact]
    public void Commuting_rotated_covariances_one_of_them_singular()
    {
        // Same eigenvectors: tr (S1 S2)^{1/2} = sum sqrt(a_i b_i) = sqrt(16) + sqrt(4) + 0 = 6.
        var s1 = Rotated(1, 4, 9);
        var s2 = Rotated(16, 1, 0);
        Assert.Equal(6.0, FrechetDistance.TraceSqrtProduct(s1, s2), 1e-10);
        // Equal means: (1 + 4 + 9) + (16 + 1 + 0) - 2 * 6 = 19.
        Assert.Equal(19.0, FrechetDistance.Compute([5, -1, 2], s1, [5, -1, 2], s2), 1e-10);
    }

    [Fact]
    public void Orthogonal_singular_covariances_share_nothing()
    {
        // tr sqrt(diag(1, 0) diag(0, 1)) = 0, so FID = 1 + 1 = 2 exactly, not an error.
        Assert.Equal(2.0, FrechetDistance.Compute([0, 0], Diagonal(1, 0), [0, 0], Diagonal(0, 1)), 1e-12);
    }

    [Fact]
    public void Trace_sqrt_of_a_covariance_with_itself_is_its_trace()
    {
        var s = Rotated(0.5, 3, 7);
        Assert.Equal(10.5, FrechetDistance.TraceSqrtProduct(s, s), 1e-10);
    }

    [Fact]
    public void Distance_of_a_fit_to_itself_is_zero_and_the_distance_is_symmetric()
    {
        var a = GaussianFit.Fit(Features.Gaussian(5000, 16, seed: 1));
        var b = GaussianFit.Fit(Features.Gaussian(4000, 16, seed: 2, shift: 0.3, scale: 1.5));

        Assert.Equal(0.0, FrechetDistance.Compute(a, a), 1e-6);
        double ab = FrechetDistance.Compute(a, b), ba = FrechetDistance.Compute(b, a);
        Assert.Equal(ab, ba, 1e-9 * ab);
        // The true Gaussians N(0, I) and N(0.3, 2.25 I) are 16 * 0.3^2 + 16 * (1.5 - 1)^2 = 5.44 apart;
        // fits of thousands of vectors land within 10 %.
        Assert.InRange(ab, 5.44 * 0.9, 5.44 * 1.1);
    }

    [Fact]
    public void Rank_deficient_fit_fewer_vectors_than_dimensions_is_finite_and_zero_against_itself()
    {
        var a = GaussianFit.Fit(Features.Gaussian(3, 10, seed: 3));
        Assert.Equal(0.0, FrechetDistance.Compute(a, a), 1e-6);
        var b = GaussianFit.Fit(Features.Gaussian(4, 10, seed: 4));
        Assert.True(double.IsFinite(FrechetDistance.Compute(a, b)));
    }

    [Fact]
    public void Mismatched_dimensions_and_non_finite_values_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => FrechetDistance.Compute([0, 0], Diagonal(1, 1), [0, 0, 0], Diagonal(1, 1, 1)));
        Assert.Throws<ArgumentException>(() => FrechetDistance.Compute([0, 0], Diagonal(1, 1, 1), [0, 0], Diagonal(1, 1)));
        Assert.Throws<ArithmeticException>(() => FrechetDistance.Compute([0, 0], Diagonal(double.NaN, 1), [0, 0], Diagonal(1, 1)));
        Assert.Throws<ArithmeticException>(() => FrechetDistance.Compute([double.PositiveInfinity, 0], Diagonal(1, 1), [0, 0], Diagonal(1, 1)));
    }
}

public class GaussianFitTests
{
    [Fact]
    public void Mean_and_unbiased_covariance_of_three_points()
    {
        // Rows (1, 2), (3, 2), (5, 8): mean (3, 4); centred (-2, -2), (0, -2), (2, 4);
        // covariance / (n - 1) = [[8, 12], [12, 24]] / 2.
        var fit = GaussianFit.Fit(FeatureSet.FromRows([[1, 2], [3, 2], [5, 8]]));
        Assert.Equal(new double[] { 3, 4 }, fit.Mean);
        Assert.Equal(new double[,] { { 4, 6 }, { 6, 12 } }, fit.Covariance);
        Assert.Equal((3, 2), (fit.Count, fit.Dimension));
    }

    [Fact]
    public void Constant_feature_has_zero_variance_and_zero_covariance()
    {
        var fit = GaussianFit.Fit(FeatureSet.FromRows([[7, 1], [7, 2], [7, 6]]));
        Assert.Equal(new double[] { 7, 3 }, fit.Mean);
        Assert.Equal(new double[,] { { 0, 0 }, { 0, 7 } }, fit.Covariance); // (4 + 1 + 9) / 2
    }

    [Fact]
    public void One_vector_is_too_few()
    {
        Assert.Throws<ArgumentException>(() => GaussianFit.Fit(FeatureSet.FromRows([[1, 2]])));
    }
}
