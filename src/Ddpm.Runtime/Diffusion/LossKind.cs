namespace Ddpm;

/// <summary>Distance between the true and the predicted noise.</summary>
public enum LossKind
{
    /// <summary>Smooth L1 with delta 1 (the tutorial's choice).</summary>
    Huber = 0,
    L2 = 1,
    L1 = 2,
}
