namespace Ddpm.Conditioning;

/// <summary>
/// Classifier-free guidance (Ho and Salimans 2022, eq. 6, written with s = 1 + w): prediction = uncond + s (cond - uncond).
/// eps, x_0 and v are all affine in eps for a given x_t and t, so guiding the model's output guides eps whatever the
/// objective. Both backends ask <see cref="Call"/> which predictions to make and combine them by this one rule.
/// </summary>
internal static class ClassifierFreeGuidance
{
    /// <summary>The predictions a scale needs.</summary>
    public static GuidanceCall Call(double scale) => scale == 1.0 ? GuidanceCall.Conditional
        : scale == 0.0 ? GuidanceCall.Unconditional
        : GuidanceCall.Both;

    /// <summary>uncond + s (cond - uncond), element by element, in float32.</summary>
    public static void Combine(ReadOnlySpan<float> conditional, ReadOnlySpan<float> unconditional, double scale, Span<float> destination)
    {
        float s = (float)scale;
        for (int i = 0; i < destination.Length; i++)
            destination[i] = unconditional[i] + s * (conditional[i] - unconditional[i]);
    }
}
