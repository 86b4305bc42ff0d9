using Ddpm.Evaluation;

namespace Ddpm.Runtime.Tests.Evaluation;

public class PrecisionRecallTests
{
    [Fact]
    public void Radii_on_a_line_are_the_distances_to_the_kth_neighbour()
    {
        var points = Features.Line(0, 1, 2, 3, 4);
        Assert.Equal(new double[] { 1, 1, 1, 1, 1 }, PrecisionRecall.Radii(points, k: 1));
        // Second neighbour: 0 -> 2 (at 2), 1 -> 0 or 2 (both at 1), ..., 4 -> 2 (at 2).
        Assert.Equal(new double[] { 2, 1, 1, 1, 2 }, PrecisionRecall.Radii(points, k: 2));
        Assert.Equal(new double[] { 3, 2, 2, 2, 3 }, PrecisionRecall.Radii(points, k: 3));
        // A vector is not its own neighbour, but an equal vector is: radius 0.
        Assert.Equal(new double[] { 0, 0, 5 }, PrecisionRecall.Radii(Features.Line(0, 0, 5), k: 1));
    }

    [Fact]
    public void Radii_use_euclidean_distance_in_several_dimensions()
    {
        // A 3-4-5 triangle: each corner's nearest neighbour at 3, 3 and 4; second neighbour at 4, 5 and 5.
        var corners = FeatureSet.FromRows([[0, 0], [3, 0], [0, 4]]);
        Assert.Equal(new double[] { 3, 3, 4 }, PrecisionRecall.Radii(corners, k: 1));
        Assert.Equal(new double[] { 4, 5, 5 }, PrecisionRecall.Radii(corners, k: 2));
    }

    [Fact]
    public void Precision_and_recall_on_a_line_by_hand()
    {
        // Real {0, 1, 2, 3, 4}, k = 1: radius 1 each, so the real manifold is [-1, 5].
        //   Generated 0 and 0.5 are inside, 8 and 9 are not: precision 2 / 4.
        // Generated {0, 0.5, 8, 9}, k = 1: radii 0.5, 0.5, 1, 1: balls [-0.5, 0.5], [0, 1], [7, 9], [8, 10].
        //   Real 0 and 1 are inside (1 exactly on the border of the ball around 0.5: <= counts), 2, 3, 4 are not: recall 2 / 5.
        var result = PrecisionRecall.Compute(Features.Line(0, 1, 2, 3, 4), Features.Line(0, 0.5, 8, 9), k: 1);
        Assert.Equal(new PrecisionRecallResult(0.5, 0.4, 1), result);
    }

    [Fact]
    public void Larger_k_grows_the_balls()
    {
        // k = 2: real radii 2, 1, 1, 1, 2 cover [-2, 6]: generated 0, 0.5 inside, 8, 9 not.
        // Generated radii: 0 -> 8, 0.5 -> 7.5, 8 -> 8, 9 -> 8.5: every real point is inside.
        var result = PrecisionRecall.Compute(Features.Line(0, 1, 2, 3, 4), Features.Line(0, 0.5, 8, 9), k: 2);
        Assert.Equal(new PrecisionRecallResult(0.5, 1.0, 2), result);
    }

    [Fact]
    public void Identical_sets_have_full_precision_and_recall()
    {
        var a = Features.Gaussian(40, 6, seed: 5);
        Assert.Equal(new PrecisionRecallResult(1, 1, 3), PrecisionRecall.Compute(a, a));
    }

    [Fact]
    public void Far_away_samples_have_zero_precision_and_recall()
    {
        var real = Features.Gaussian(40, 6, seed: 5);
        var far = Features.Gaussian(40, 6, seed: 6, shift: 100);
        Assert.Equal(new PrecisionRecallResult(0, 0, 3), PrecisionRecall.Compute(real, far));
    }

    [Fact]
    public void Share_inside_counts_queries_within_any_radius()
    {
        // Balls [−1, 1] and [9, 11]: queries 1 (border), 5, 10, -1.5 -> 2 of 4.
        double share = PrecisionRecall.ShareInside(Features.Line(0, 10), [1, 1], Features.Line(1, 5, 10, -1.5));
        Assert.Equal(0.5, share);
        Assert.Equal(0.0, PrecisionRecall.ShareInside(Features.Line(0, 10), [1, 1], new FeatureSet([], 0, 1)));
    }

    [Fact]
    public void Too_few_vectors_for_k_are_rejected()
    {
        var four = Features.Line(0, 1, 2, 3);
        Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(four, Features.Line(0, 1, 2), k: 3));
        Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(Features.Line(0, 1, 2), four, k: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => PrecisionRecall.Compute(four, four, k: 0));
        Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(four, FeatureSet.FromRows([[0, 0], [1, 1], [2, 2], [3, 3]]), k: 1));
    }
}
