namespace Ddpm.Diffusion;

/// <summary>
/// Reading a model's output at x_t as the pair (x_0, eps), for any objective: with a = sqrt(alpha_bar_t),
/// s = sqrt(1 - alpha_bar_t) and x_t = a x_0 + s eps (a^2 + s^2 = 1), eps-prediction gives x_0 = (x_t - s eps) / a;
/// x_0-prediction eps = (x_t - a x_0) / s; v-prediction (v = a eps - s x_0, Salimans and Ho 2022) x_0 = a x_t - s v and
/// eps = s x_t + a v. After x_0 is clipped or thresholded, eps is read again from it (<see cref="EpsFromX0"/>), so every
/// sampler's update moves towards the treated x_0.
/// </summary>
public static class ObjectiveForms
{
    /// <summary>x_0 and eps as forms in (x_t, model output).</summary>
    /// <param name="objective">What the model predicts.</param>
    /// <param name="a">sqrt(alpha_bar_t).</param>
    /// <param name="s">sqrt(1 - alpha_bar_t).</param>
    public static (LinearForm X0, LinearForm Eps) Read(Objective objective, double a, double s) => objective switch
    {
        Objective.Eps => (new LinearForm(1, -s, a), LinearForm.Second),
        Objective.X0 => (LinearForm.Second, EpsFromX0(a, s)),
        Objective.V => (new LinearForm(a, -s), new LinearForm(s, a)),
        _ => throw new ArgumentOutOfRangeException(nameof(objective), objective, "Use Eps, X0 or V."),
    };

    /// <summary>eps = (x_t - a x_0) / s, as a form in (x_t, x_0).</summary>
    public static LinearForm EpsFromX0(double a, double s) => new(1, -a, s);

    /// <summary>x_t = a x_0 + s noise (eq. 4 of Ho et al. 2020), as a form in (x_0, noise).</summary>
    public static LinearForm AddNoise(double a, double s) => new(a, s);
}
