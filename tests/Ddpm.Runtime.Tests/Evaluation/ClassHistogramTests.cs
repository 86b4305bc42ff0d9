using Ddpm.Evaluation;

namespace Ddpm.Runtime.Tests.Evaluation;

public class ClassHistogramTests
{
    private static readonly string[] Ten = Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray();

    [Fact]
    public void Uniform_over_ten_classes_has_log2_10_bits()
    {
        var histogram = ClassHistogram.FromLabels(Enumerable.Range(0, 1000).Select(i => i % 10), Ten);
        Assert.Equal(Enumerable.Repeat(100, 10), histogram.Counts);
        Assert.Equal(Enumerable.Repeat(0.1, 10), histogram.Shares);
        Assert.Equal(Math.Log2(10), histogram.EntropyBits, 1e-12);
        Assert.Equal(3.321928094887362, histogram.MaxEntropyBits, 1e-15);
        Assert.Equal(1000, histogram.Total);
    }

    [Fact]
    public void One_class_only_has_zero_bits()
    {
        var histogram = ClassHistogram.FromLabels([4, 4, 4], Ten);
        Assert.Equal(new[] { 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0 }, histogram.Shares);
        Assert.Equal(0.0, histogram.EntropyBits);
    }

    [Fact]
    public void Three_to_one_split_by_hand()
    {
        // -(3/4 log2 3/4 + 1/4 log2 1/4) = 2 - (3/4) log2 3 = 0.8112781244591328.
        var histogram = ClassHistogram.FromLabels([1, 1, 0, 1], ["a", "b", "c"]);
        Assert.Equal(new[] { 1, 3, 0 }, histogram.Counts);
        Assert.Equal(new[] { 0.25, 0.75, 0 }, histogram.Shares);
        Assert.Equal(2 - 0.75 * Math.Log2(3), histogram.EntropyBits, 1e-15);
        Assert.Equal(0.8112781244591328, histogram.EntropyBits, 1e-15);
        Assert.Equal(Math.Log2(3), histogram.MaxEntropyBits, 1e-15);
    }

    [Fact]
    public void Empty_histogram_has_zero_shares_and_entropy()
    {
        var histogram = ClassHistogram.FromLabels([], ["a", "b"]);
        Assert.Equal(new[] { 0.0, 0.0 }, histogram.Shares);
        Assert.Equal(0.0, histogram.EntropyBits);
        Assert.Equal(0, histogram.Total);
    }

    [Fact]
    public void Labels_out_of_range_and_no_classes_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassHistogram.FromLabels([0, 2], ["a", "b"]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassHistogram.FromLabels([-1], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => ClassHistogram.FromLabels([], []));
    }

    [Fact]
    public void Histograms_compare_by_content()
    {
        var a = ClassHistogram.FromLabels([0, 1, 1], ["x", "y"]);
        var b = new ClassHistogram(new List<string> { "x", "y" }, new List<int> { 1, 2 });
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, ClassHistogram.FromLabels([0, 0, 1], ["x", "y"]));
        Assert.NotEqual(a, ClassHistogram.FromLabels([0, 1, 1], ["x", "z"]));
    }
}
