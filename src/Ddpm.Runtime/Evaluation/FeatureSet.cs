using System.Numerics;
using System.Runtime.InteropServices;

namespace Ddpm.Evaluation;

/// <summary>
/// <see cref="Count"/> feature vectors of <see cref="Dimension"/> float64 values each, row-major:
/// row i is <c>Values[i * Dimension .. (i + 1) * Dimension)</c>. The input of every metric here.
/// </summary>
public sealed class FeatureSet
{
    /// <summary>Wraps <paramref name="values"/> (not copied) as <paramref name="count"/> vectors of <paramref name="dimension"/> values.</summary>
    /// <param name="values">count * dimension values, row-major.</param>
    /// <param name="count">Number of vectors (&gt;= 0).</param>
    /// <param name="dimension">Values per vector (&gt;= 1).</param>
    public FeatureSet(double[] values, int count, int dimension)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be >= 0.");
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be >= 1.");
        if (values.LongLength != (long)count * dimension)
            throw new ArgumentException($"Expected {(long)count * dimension} values for {count} vectors of {dimension}, got {values.LongLength}.", nameof(values));
        Values = values;
        Count = count;
        Dimension = dimension;
    }

    /// <summary>All vectors, row-major; shared, not a copy.</summary>
    public double[] Values { get; }
    /// <summary>Number of vectors.</summary>
    public int Count { get; }
    /// <summary>Values per vector (128 for the feature net's features).</summary>
    public int Dimension { get; }

    /// <summary>Vector <paramref name="index"/> (0-based) as a view into <see cref="Values"/>.</summary>
    public ReadOnlySpan<double> Row(int index) => Values.AsSpan(index * Dimension, Dimension);

    /// <summary>A set from one array per vector (all of the same length).</summary>
    public static FeatureSet FromRows(IReadOnlyList<double[]> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("At least one row is needed to know the dimension.", nameof(rows));
        int d = rows[0].Length;
        var values = new double[rows.Count * d];
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].Length != d)
                throw new ArgumentException($"Row {i} has {rows[i].Length} values; row 0 has {d}.", nameof(rows));
            rows[i].CopyTo(values, i * d);
        }
        return new FeatureSet(values, rows.Count, d);
    }

    /// <summary>The rows at <paramref name="indices"/>, in that order.</summary>
    public FeatureSet Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var values = new double[indices.Count * Dimension];
        for (int i = 0; i < indices.Count; i++)
            Row(indices[i]).CopyTo(values.AsSpan(i * Dimension, Dimension));
        return new FeatureSet(values, indices.Count, Dimension);
    }

    internal static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        var va = MemoryMarshal.Cast<double, Vector<double>>(a);
        var vb = MemoryMarshal.Cast<double, Vector<double>>(b);
        var acc = Vector<double>.Zero;
        for (int i = 0; i < va.Length; i++) acc += va[i] * vb[i];
        double sum = Vector.Sum(acc);
        for (int i = va.Length * Vector<double>.Count; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    internal static double SquaredDistance(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        var va = MemoryMarshal.Cast<double, Vector<double>>(a);
        var vb = MemoryMarshal.Cast<double, Vector<double>>(b);
        var acc = Vector<double>.Zero;
        for (int i = 0; i < va.Length; i++)
        {
            var diff = va[i] - vb[i];
            acc += diff * diff;
        }
        double sum = Vector.Sum(acc);
        for (int i = va.Length * Vector<double>.Count; i < a.Length; i++)
        {
            double diff = a[i] - b[i];
            sum += diff * diff;
        }
        return sum;
    }

    internal static void CheckSameDimension(FeatureSet a, FeatureSet b, string what)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Dimension != b.Dimension)
            throw new ArgumentException($"{what}: the two feature sets have dimensions {a.Dimension} and {b.Dimension}.");
    }
}
