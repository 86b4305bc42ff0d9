using Ddpm.Evaluation;

namespace Ddpm.Runtime.Tests.Evaluation;

public class KernelDistanceTests
{
    [Fact]
    public void Kernel_is_the_cubic_polynomial_of_the_scaled_dot_product()
    {
        // (1 * 3 + 2 * -1) / 2 + 1 = 1.5; 1.5^3 = 3.375.
        Assert.Equal(3.375, KernelDistance.Kernel([1, 2], [3, -1]));
        // Orthogonal vectors: (0 + 1)^3 = 1; x . y / d = -1: (−1 + 1)^3 = 0.
        Assert.Equal(1.0, KernelDistance.Kernel([1, 0, 0], [0, 5, 0]));
        Assert.Equal(0.0, KernelDistance.Kernel([1, 1], [-1, -1]));
        Assert.Throws<ArgumentException>(() => KernelDistance.Kernel([1, 2], [1, 2, 3]));
    }

    [Fact]
    public void Unbiased_mmd_of_two_pairs_on_a_line_by_hand()
    {
        // d = 1, k(a, b) = (a b + 1)^3. x = {0, 1}, y = {2, 3}.
        // xx: k(0, 1) = 1, both orders: 2 / (2 * 1) = 1.
        // yy: k(2, 3) = 7^3 = 343: 686 / 2 = 343.
        // xy: k(0,2) + k(0,3) + k(1,2) + k(1,3) = 1 + 1 + 27 + 64 = 93: 2 * 93 / 4 = 46.5.
        double mmd = KernelDistance.UnbiasedMmd2(Features.Line(0, 1), Features.Line(2, 3));
        Assert.Equal(1 + 343 - 46.5, mmd, 1e-12);
    }

    [Fact]
    public void Unbiased_mmd_of_unequal_sizes_by_hand_can_be_negative()
    {
        // x = {0, 1, 2}: pairs k(0,1) = 1, k(0,2) = 1, k(1,2) = 27: 2 * 29 / (3 * 2) = 29 / 3.
        // y = {1, -1}: k(1, -1) = 0: 0.
        // xy: k(0,±1) = 1, 1; k(1,1) = 8, k(1,-1) = 0; k(2,1) = 27, k(2,-1) = -1: sum 36, 2 * 36 / 6 = 12.
        double mmd = KernelDistance.UnbiasedMmd2(Features.Line(0, 1, 2), Features.Line(1, -1));
        Assert.Equal(29.0 / 3 - 12, mmd, 1e-12);
    }

    [Fact]
    public void Sets_no_larger_than_the_subset_size_are_used_whole_every_time()
    {
        var result = KernelDistance.Compute(Features.Line(0, 1), Features.Line(2, 3), subsets: 7, subsetSize: 10, seed: 5);
        Assert.Equal(297.5, result.Mean, 1e-12);
        Assert.Equal(0.0, result.StandardDeviation, 1e-12);
        Assert.Equal((7, 2), (result.Subsets, result.SubsetSize));
    }

    /// <summary>What Compute is documented to do, without its shortcuts: the same draws, the plain estimator per subset.</summary>
    private static (double Mean, double Std) Reference(FeatureSet x, FeatureSet y, int subsets, int subsetSize, int seed)
    {
        int m = Math.Min(subsetSize, Math.Min(x.Count, y.Count));
        var random = new Random(seed);
        var values = new double[subsets];
        for (int s = 0; s < subsets; s++)
        {
            int[] ix = KernelDistance.Draw(random, x.Count, m), iy = KernelDistance.Draw(random, y.Count, m);
            values[s] = KernelDistance.UnbiasedMmd2(x.Subset(ix), y.Subset(iy));
        }
        double mean = values.Average();
        return (mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / subsets));
    }

    [Theory]
    [InlineData(30, 40, 10)]  // neither set whole
    [InlineData(10, 40, 10)]  // x whole
    [InlineData(40, 10, 10)]  // y whole
    [InlineData(10, 10, 50)]  // both whole
    public void Subset_estimate_equals_the_plain_estimator_over_the_same_draws(int nx, int ny, int subsetSize)
    {
        var x = Features.Gaussian(nx, 5, seed: 11);
        var y = Features.Gaussian(ny, 5, seed: 12, shift: 0.4);

        var result = KernelDistance.Compute(x, y, subsets: 6, subsetSize: subsetSize, seed: 3);
        var (mean, std) = Reference(x, y, 6, subsetSize, 3);

        Assert.Equal(mean, result.Mean, 1e-10 * Math.Abs(mean));
        Assert.Equal(std, result.StandardDeviation, 1e-9 * Math.Max(std, 1e-3));
        Assert.Equal(Math.Min(subsetSize, Math.Min(nx, ny)), result.SubsetSize);
    }

    [Fact]
    public void Same_seed_same_result_other_seed_other_subsets()
    {
        var x = Features.Gaussian(60, 4, seed: 1);
        var y = Features.Gaussian(60, 4, seed: 2);
        var a = KernelDistance.Compute(x, y, subsets: 5, subsetSize: 20, seed: 9);
        var b = KernelDistance.Compute(x, y, subsets: 5, subsetSize: 20, seed: 9);
        var c = KernelDistance.Compute(x, y, subsets: 5, subsetSize: 20, seed: 10);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Mean, c.Mean);
    }

    [Fact]
    public void Two_draws_of_one_distribution_are_near_zero_a_shifted_one_clearly_positive()
    {
        var real = Features.Gaussian(300, 8, seed: 21);
        var same = Features.Gaussian(300, 8, seed: 22);
        var shifted = Features.Gaussian(300, 8, seed: 23, shift: 0.5);

        var near = KernelDistance.Compute(real, same, subsets: 20, subsetSize: 100, seed: 0);
        var far = KernelDistance.Compute(real, shifted, subsets: 20, subsetSize: 100, seed: 0);

        // For N(0, I) against N(s 1, I) in d dimensions the expected MMD^2 of this kernel is
        // 3 s^2 + 3 s^4 + s^6 + (3 s^2 + 6 s^4) / d + 6 s^2 / d^2 (expand (u + 1)^3 and take Gaussian moments):
        // 1.117 for s = 0.5, d = 8; exactly 0 for s = 0.
        Assert.InRange(near.Mean, -0.05, 0.05);
        Assert.InRange(far.Mean, 0.9, 1.35);
        Assert.True(far.Mean > 20 * Math.Abs(near.Mean));
    }

    [Fact]
    public void Draw_gives_distinct_indices_in_range_and_a_permutation_when_drawing_all()
    {
        var random = new Random(4);
        var some = KernelDistance.Draw(random, 50, 20);
        Assert.Equal(20, some.Distinct().Count());
        Assert.All(some, i => Assert.InRange(i, 0, 49));
        Assert.Equal(Enumerable.Range(0, 13), KernelDistance.Draw(random, 13, 13).Order());
    }

    [Fact]
    public void Invalid_arguments_are_rejected()
    {
        var x = Features.Line(0, 1, 2);
        Assert.Throws<ArgumentException>(() => KernelDistance.UnbiasedMmd2(x, Features.Line(1)));
        Assert.Throws<ArgumentException>(() => KernelDistance.Compute(x, Features.Gaussian(3, 2, seed: 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelDistance.Compute(x, x, subsets: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelDistance.Compute(x, x, subsetSize: 1));
        Assert.Throws<ArithmeticException>(() => KernelDistance.Compute(Features.Line(0, double.NaN), x));
    }
}
