namespace Ddpm.Diffusion;

/// <summary>
/// Dynamic thresholding (Saharia et al. 2022, section 2.3) on float spans: per image, limit = max(1, the p-quantile of |x_0|,
/// linearly interpolated as torch.quantile does); x_0 is clamped to [-limit, limit] and divided by limit, so it ends in
/// [-1, 1] without saturating every outlier to the edge. The TorchSharp backend computes the same on the device.
/// </summary>
internal static class DynamicThresholding
{
    /// <summary>Thresholds each of the <paramref name="images"/> images of <paramref name="x0"/> in place.</summary>
    public static void Apply(Span<float> x0, int images, double quantile)
    {
        if (!(quantile > 0 && quantile < 1))
            throw new ArgumentOutOfRangeException(nameof(quantile), quantile, "The dynamic threshold quantile must be in (0, 1).");
        int length = x0.Length / images;
        var magnitudes = new float[length];
        for (int image = 0; image < images; image++)
        {
            var values = x0.Slice(image * length, length);
            for (int i = 0; i < length; i++) magnitudes[i] = Math.Abs(values[i]);
            Array.Sort(magnitudes);
            double position = quantile * (length - 1);
            int below = (int)Math.Floor(position), above = Math.Min(below + 1, length - 1);
            float limit = (float)(magnitudes[below] + (magnitudes[above] - magnitudes[below]) * (position - below));
            limit = Math.Max(limit, 1f);
            for (int i = 0; i < length; i++) values[i] = Math.Clamp(values[i], -limit, limit) / limit;
        }
    }
}
