namespace Ddpm.Evaluation;

/// <summary>Improved precision and recall (Kynkaanniemi et al. 2019) with the k of their neighbourhoods.</summary>
/// <param name="Precision">Share of generated vectors inside the real manifold: how many samples look real.</param>
/// <param name="Recall">Share of real vectors inside the generated manifold: how much of the data the samples cover.</param>
/// <param name="K">The k whose nearest-neighbour distance sets each ball's radius.</param>
public sealed record PrecisionRecallResult(double Precision, double Recall, int K);

/// <summary>
/// Improved precision and recall (Kynkaanniemi et al. 2019). A set's manifold is the union of balls around its
/// vectors, each ball's radius the distance to that vector's k-th nearest neighbour in the same set (itself not
/// counted). A vector lies inside a manifold when it is within (&lt;=) the radius of at least one of its balls.
/// Precision = share of generated vectors inside the real manifold; recall = share of real vectors inside the
/// generated manifold. Euclidean distances in float64; exact (no approximate neighbours).
/// </summary>
public static class PrecisionRecall
{
    /// <summary>The paper's recommended k.</summary>
    public const int DefaultK = 3;

    /// <summary>Precision and recall of <paramref name="generated"/> against <paramref name="real"/>.</summary>
    /// <param name="real">Features of real images.</param>
    /// <param name="generated">Features of generated images, of the same dimension.</param>
    /// <param name="k">The neighbour whose distance is a ball's radius (&gt;= 1); each set needs more than k vectors.</param>
    public static PrecisionRecallResult Compute(FeatureSet real, FeatureSet generated, int k = DefaultK)
    {
        FeatureSet.CheckSameDimension(real, generated, "Precision and recall");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be >= 1.");
        if (real.Count <= k || generated.Count <= k)
            throw new ArgumentException($"Precision and recall with k = {k} need more than {k} vectors in each set, got {real.Count} real and {generated.Count} generated.");
        var realRadii = SquaredRadii(real, k);
        var generatedRadii = SquaredRadii(generated, k);
        return new PrecisionRecallResult(ShareInside(real, realRadii, generated), ShareInside(generated, generatedRadii, real), k);
    }

    /// <summary>Each vector's distance to its k-th nearest neighbour within the set, itself excluded.</summary>
    public static double[] Radii(FeatureSet set, int k = DefaultK) => SquaredRadii(set, k).Select(Math.Sqrt).ToArray();

    /// <summary>Share of <paramref name="queries"/> within (&lt;=) the radius of at least one vector of <paramref name="manifold"/>.</summary>
    internal static double ShareInside(FeatureSet manifold, IReadOnlyList<double> squaredRadii, FeatureSet queries)
    {
        FeatureSet.CheckSameDimension(manifold, queries, "Manifold membership");
        if (squaredRadii.Count != manifold.Count)
            throw new ArgumentException($"{squaredRadii.Count} radii for {manifold.Count} vectors.", nameof(squaredRadii));
        if (queries.Count == 0) return 0;
        var inside = new bool[queries.Count];
        Parallel.For(0, queries.Count, q =>
        {
            var query = queries.Row(q);
            for (int i = 0; i < manifold.Count; i++)
                if (FeatureSet.SquaredDistance(query, manifold.Row(i)) <= squaredRadii[i])
                {
                    inside[q] = true;
                    break;
                }
        });
        return (double)inside.Count(b => b) / queries.Count;
    }

    /// <summary>Squared distance of each vector to its k-th nearest neighbour (itself excluded).</summary>
    internal static double[] SquaredRadii(FeatureSet set, int k)
    {
        if (set.Count <= k)
            throw new ArgumentException($"k = {k} nearest neighbours need more than {k} vectors, got {set.Count}.");
        var radii = new double[set.Count];
        Parallel.For(0, set.Count, () => new double[k], (i, _, nearest) =>
        {
            // nearest[0..k) holds the k smallest distances seen so far, ascending.
            Array.Fill(nearest, double.PositiveInfinity);
            var row = set.Row(i);
            for (int j = 0; j < set.Count; j++)
            {
                if (j == i) continue;
                double d = FeatureSet.SquaredDistance(row, set.Row(j));
                if (d >= nearest[k - 1]) continue;
                int p = k - 1;
                while (p > 0 && nearest[p - 1] > d)
                {
                    nearest[p] = nearest[p - 1];
                    p--;
                }
                nearest[p] = d;
            }
            radii[i] = nearest[k - 1];
            return nearest;
        }, _ => { });
        return radii;
    }
}
