namespace Ddpm.Onnx;

/// <summary>
/// What to draw from a class-conditional model: one label per image (<see cref="OnnxDiffusionModel.Classes"/> for the null
/// class, an unconditional image) and the classifier-free guidance scale. <see cref="OnnxDiffusionModel.ChooseClasses"/>
/// makes one from a class name.
/// </summary>
/// <param name="Labels">The class of each image to draw, in order.</param>
/// <param name="Guidance">prediction = uncond + Guidance * (cond - uncond): 1 = the conditional model alone, above 1 = more
/// like the class and less varied, 0 = the null class alone.</param>
public sealed record OnnxClassCondition(IReadOnlyList<int> Labels, double Guidance);
