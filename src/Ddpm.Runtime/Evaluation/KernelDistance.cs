namespace Ddpm.Evaluation;

/// <summary>KID over subsets: the mean and the standard deviation of the subsets' unbiased MMD^2.</summary>
/// <param name="Mean">KID: the unbiased MMD^2 averaged over the subsets (lower is better; can be slightly negative).</param>
/// <param name="StandardDeviation">Population standard deviation over the subsets (ddof 0, as torch-fidelity and clean-fid report it).</param>
/// <param name="Subsets">Number of subsets drawn.</param>
/// <param name="SubsetSize">Vectors per subset, from each set.</param>
public sealed record KidResult(double Mean, double StandardDeviation, int Subsets, int SubsetSize);

/// <summary>
/// The kernel distance of Binkowski et al. 2018 ("KID"): the unbiased estimate of the squared maximum mean
/// discrepancy between two feature sets under the cubic polynomial kernel
/// <code>k(x, y) = (x . y / d + 1)^3</code>
/// computed over random subsets of equal size m, each subset drawn without replacement from each set:
/// <code>MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1)) - 2 sum_{i,j} k(x_i, y_j) / m^2</code>
/// Unbiased, so it can be slightly negative when the sets match; unlike FID its expectation does not depend on n.
/// </summary>
/// <remarks>
/// Deterministic for a given seed (System.Random; row sums are added in a fixed order whatever the thread count).
/// A set no larger than m is used whole in every subset, so its own kernel sum, and its sums against the other set,
/// are computed once instead of once per subset.
/// </remarks>
public static class KernelDistance
{
    /// <summary>Subsets averaged over by default (torch-fidelity's 100).</summary>
    public const int DefaultSubsets = 100;
    /// <summary>Default largest subset size (torch-fidelity's 1000).</summary>
    public const int DefaultSubsetSize = 1000;

    /// <summary>k(x, y) = (x . y / d + 1)^3.</summary>
    public static double Kernel(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"Vectors of lengths {x.Length} and {y.Length}.");
        double k = FeatureSet.Dot(x, y) / x.Length + 1;
        return k * k * k;
    }

    /// <summary>Unbiased MMD^2 between all of <paramref name="x"/> and all of <paramref name="y"/> (each at least 2 vectors; sizes may differ).</summary>
    public static double UnbiasedMmd2(FeatureSet x, FeatureSet y)
    {
        FeatureSet.CheckSameDimension(x, y, "KID");
        if (x.Count < 2 || y.Count < 2)
            throw new ArgumentException($"The unbiased MMD needs at least 2 vectors in each set, got {x.Count} and {y.Count}.");
        var all = (int n) => Enumerable.Range(0, n).ToArray();
        int[] ix = all(x.Count), iy = all(y.Count);
        double m = x.Count, n = y.Count;
        return WithinSum(x, ix) / (m * (m - 1)) + WithinSum(y, iy) / (n * (n - 1)) - 2 * CrossRowSums(x, ix, y, iy).Sum() / (m * n);
    }

    /// <summary>
    /// KID over <paramref name="subsets"/> subsets of size min(<paramref name="subsetSize"/>, |x|, |y|), drawn with
    /// <paramref name="seed"/>.
    /// </summary>
    public static KidResult Compute(FeatureSet x, FeatureSet y, int subsets = DefaultSubsets, int subsetSize = DefaultSubsetSize, int seed = 0)
    {
        FeatureSet.CheckSameDimension(x, y, "KID");
        if (subsets < 1) throw new ArgumentOutOfRangeException(nameof(subsets), subsets, "subsets must be >= 1.");
        if (subsetSize < 2) throw new ArgumentOutOfRangeException(nameof(subsetSize), subsetSize, "subsetSize must be >= 2.");
        int m = Math.Min(subsetSize, Math.Min(x.Count, y.Count));
        if (m < 2)
            throw new ArgumentException($"KID needs at least 2 vectors in each set, got {x.Count} and {y.Count}.");

        bool xWhole = x.Count == m, yWhole = y.Count == m;
        int[] allX = Enumerable.Range(0, x.Count).ToArray(), allY = Enumerable.Range(0, y.Count).ToArray();
        double? xxFixed = xWhole ? WithinSum(x, allX) : null;
        double? yyFixed = yWhole ? WithinSum(y, allY) : null;
        // With x whole, sum_{i in x, j in subset} k(x_i, y_j) is a sum of per-y column sums: computed once.
        double[]? sumsOverX = xWhole ? CrossRowSums(y, allY, x, allX) : null;
        double[]? sumsOverY = !xWhole && yWhole ? CrossRowSums(x, allX, y, allY) : null;

        var random = new Random(seed);
        var values = new double[subsets];
        double pairs = (double)m * (m - 1), cross = (double)m * m;
        for (int s = 0; s < subsets; s++)
        {
            // Both draws are always made, so the subsets do not depend on which shortcut applies.
            int[] ix = Draw(random, x.Count, m), iy = Draw(random, y.Count, m);
            double xx = xxFixed ?? WithinSum(x, ix);
            double yy = yyFixed ?? WithinSum(y, iy);
            double xy = sumsOverX is not null ? SumAt(sumsOverX, yWhole ? allY : iy)
                      : sumsOverY is not null ? SumAt(sumsOverY, ix)
                      : CrossRowSums(x, ix, y, iy).Sum();
            values[s] = xx / pairs + yy / pairs - 2 * xy / cross;
        }
        double mean = values.Average();
        double variance = values.Sum(v => (v - mean) * (v - mean)) / subsets;
        if (!double.IsFinite(mean))
            throw new ArithmeticException("KID is not finite: the features hold NaN or infinite values.");
        return new KidResult(mean, Math.Sqrt(variance), subsets, m);
    }

    /// <summary>sum_{i != j} k(a_i, a_j) over the rows at <paramref name="rows"/> (twice the sum over i &lt; j).</summary>
    private static double WithinSum(FeatureSet a, int[] rows)
    {
        var partial = new double[rows.Length];
        Parallel.For(0, rows.Length, i =>
        {
            var ai = a.Row(rows[i]);
            double sum = 0;
            for (int j = i + 1; j < rows.Length; j++) sum += Kernel(ai, a.Row(rows[j]));
            partial[i] = sum;
        });
        return 2 * partial.Sum();
    }

    /// <summary>For each row i of a (at <paramref name="aRows"/>): sum_j k(a_i, b_j) over <paramref name="bRows"/>.</summary>
    private static double[] CrossRowSums(FeatureSet a, int[] aRows, FeatureSet b, int[] bRows)
    {
        var sums = new double[aRows.Length];
        Parallel.For(0, aRows.Length, i =>
        {
            var ai = a.Row(aRows[i]);
            double sum = 0;
            foreach (int j in bRows) sum += Kernel(ai, b.Row(j));
            sums[i] = sum;
        });
        return sums;
    }

    private static double SumAt(double[] values, int[] indices)
    {
        double sum = 0;
        foreach (int i in indices) sum += values[i];
        return sum;
    }

    /// <summary>m distinct indices of [0, n), by a partial Fisher-Yates shuffle.</summary>
    internal static int[] Draw(Random random, int n, int m)
    {
        var pool = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < m; i++)
        {
            int j = random.Next(i, n);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        return pool[..m];
    }
}
