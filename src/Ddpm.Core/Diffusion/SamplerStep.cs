namespace Ddpm.Diffusion;

/// <summary>
/// One reverse step as scalar coefficients: with x_0 and eps read from the model's output at <see cref="Timestep"/>
/// (<see cref="ObjectiveForms"/>) and D = x_0 at a first-order step, D = <see cref="CurrentX0"/> x_0 +
/// <see cref="PreviousX0"/> x_0' (x_0' the previous step's prediction) at a second-order one,
/// x_prev = <see cref="X"/> x + <see cref="Data"/> D + <see cref="Eps"/> eps + <see cref="Noise"/> z, with z fresh standard
/// normal noise drawn only when <see cref="Noise"/> is not 0. Backends add the terms in that order and leave out those
/// whose coefficient is 0, so they round alike.
/// </summary>
/// <param name="Timestep">The timestep t the model is called at.</param>
/// <param name="Order">1, or 2 for a multistep (DPM-Solver++(2M)) step that uses the previous x_0.</param>
/// <param name="X">The coefficient of x_t.</param>
/// <param name="Data">The coefficient of D.</param>
/// <param name="Eps">The coefficient of the predicted eps.</param>
/// <param name="Noise">The coefficient of fresh noise z; 0 draws none.</param>
/// <param name="CurrentX0">At a second-order step, the weight of this step's x_0 in D.</param>
/// <param name="PreviousX0">At a second-order step, the weight of the previous step's x_0 in D.</param>
public sealed record SamplerStep(int Timestep, int Order, double X, double Data, double Eps, double Noise,
                                 double CurrentX0 = 1, double PreviousX0 = 0);
