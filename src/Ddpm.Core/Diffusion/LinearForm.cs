namespace Ddpm.Diffusion;

/// <summary>
/// (X x + Y y) / Divisor: how the samplers read x_0 or eps from x_t and the model's output (or from x_t and x_0), and how
/// the forward process mixes x_0 and noise. Backends apply it term by term, leaving out a term whose coefficient is 0,
/// a multiplication by 1 and a division by 1, so the float32 operations are the same on every backend.
/// </summary>
/// <param name="X">The coefficient of the first operand (x_t).</param>
/// <param name="Y">The coefficient of the second operand (the model's output, x_0 or noise).</param>
/// <param name="Divisor">Divides the sum; 1 for none.</param>
public readonly record struct LinearForm(double X, double Y, double Divisor = 1)
{
    /// <summary>y itself: (0 x + 1 y) / 1.</summary>
    public static LinearForm Second { get; } = new(0, 1);

    /// <summary>Whether the form is y itself (the backend can alias the operand).</summary>
    public bool IsSecond => X == 0 && Y == 1 && Divisor == 1;
}
