using Ddpm.Generators.SpecCore;
namespace Ddpm.Generators.Model
{
    /// <summary>Where the generated type lives and how it is declared.</summary>
    /// <param name="Modifiers">Accessibility to emit: "" for a partial class the user declared (theirs wins), "public " for YAML.</param>
    /// <param name="Origin">What declared it, for the generated docs: "attributes" or the spec file name.</param>
    internal sealed record TypeTarget(string Namespace, string ClassName, string Modifiers, string Origin)
    {
        /// <summary>Namespace-qualified name: Ddpm.Models.FashionMnistUNet.</summary>
        public string FullName => Namespace.Length > 0 ? Namespace + "." + ClassName : ClassName;

        /// <summary>As written in generated code: global::Ddpm.Models.FashionMnistUNet.</summary>
        public string Qualified => "global::" + FullName;
    }

    /// <summary>One stage of the U-Net as the user stated it (index in the down path, before validation).</summary>
    internal sealed record StageDeclaration(int Index, int Blocks, int Attention);

    /// <summary>
    /// A U-Net as declared, before validation (ClassDropout and Guidance are null when not written): produced by both front ends (attributes, YAML).
    /// Integers stay unvalidated here; SpecValidator turns this into a UNetSpec or diagnostics.
    /// </summary>
    internal sealed record UNetDeclaration(
        TypeTarget Target,
        int Channels,
        int ImageSize,
        int Dim,
        EquatableArray<int> DimMults,
        int ResnetBlockGroups,
        EquatableArray<StageDeclaration> Stages,
        int MidAttention,
        int Heads,
        int DimHead,
        int Classes = 0,
        double? ClassDropout = null,
        double? Guidance = null);

    /// <summary>One validated stage: ResNet blocks then the attention layer.</summary>
    internal sealed record StageSpec(int Blocks, AttentionKind Attention);

    /// <summary>The validated U-Net: the single model every emitter consumes.</summary>
    /// <param name="Classes">Classes of a class-conditional model (a class embedding with a null class at index Classes); 0 = unconditional.</param>
    /// <param name="ClassDropout">Share of training labels dropped to the null class (defaults filled in; 0 when unconditional).</param>
    /// <param name="Guidance">The default guidance scale of sampling (1 when unconditional).</param>
    internal sealed record UNetSpec(
        TypeTarget Target,
        int Channels,
        int ImageSize,
        int Dim,
        EquatableArray<int> DimMults,
        int ResnetBlockGroups,
        EquatableArray<StageSpec> Stages,
        AttentionKind MidAttention,
        int Heads,
        int DimHead,
        int Classes = 0,
        double ClassDropout = 0,
        double Guidance = 1)
    {
        /// <summary>Whether the model takes class labels.</summary>
        public bool IsConditional => Classes > 0;
    }

    /// <summary>
    /// A noise schedule, declared and (after validation) final: it has no derived structure. Besides the
    /// betas it carries what the model predicts and how samplers treat the predicted x_0 (the runtime's
    /// DiffusionOptions). Kind and Objective stay integers until validated, like the U-Net's attention.
    /// </summary>
    /// <param name="DynamicThreshold">The quantile of dynamic thresholding; 0 = off.</param>
    internal sealed record ScheduleSpec(TypeTarget Target, int Kind, int Timesteps, double BetaStart, double BetaEnd,
                                        int Objective, bool ClipX0, double DynamicThreshold);
}
