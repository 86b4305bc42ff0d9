using System.Globalization;
using Microsoft.CodeAnalysis;
using ScheduleEmitter = Ddpm.Generators.Emit.ScheduleEmitter;
using ScheduleSpec = Ddpm.Generators.Model.ScheduleSpec;
using TypeTarget = Ddpm.Generators.Model.TypeTarget;

namespace Ddpm.Generators.Tests;

/// <summary>The schedule emitter alone, without Roslyn's driver: a hand-built spec in, compiling code out.</summary>
public class ScheduleEmitterTests
{
    /// <summary>A culture that writes numbers unlike C#: the emitter must not use it.</summary>
    static CultureInfo CommaCulture()
    {
        var culture = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        culture.NumberFormat.NumberDecimalSeparator = ",";
        culture.NumberFormat.NumberGroupSeparator = ".";
        culture.NumberFormat.NegativeSign = "~";
        return culture;
    }

    static string EmitUnder(CultureInfo culture, ScheduleSpec spec)
    {
        CultureInfo previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = culture;
            return ScheduleEmitter.Emit(spec);
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }

    [Theory]
    [InlineData((int)Objective.Eps, false, 0.0)]
    [InlineData((int)Objective.X0, true, 0.0)]
    [InlineData((int)Objective.V, false, 0.995)]
    [InlineData((int)Objective.V, false, 0.30000000000000004)] // 0.1 + 0.2: needs all 17 digits
    [InlineData((int)Objective.Eps, false, 5e-324)]             // the smallest subnormal
    [InlineData((int)Objective.X0, false, 0.99999999999999989)] // the largest double below 1
    public void The_sampling_constants_round_trip_through_the_emitted_code(int objective, bool clip, double threshold)
    {
        var spec = new ScheduleSpec(new TypeTarget("RoundTrip", "S", "public static ", "a test"), (int)ScheduleKind.Linear, 4, 1e-4, 0.02,
                                    objective, clip, threshold);
        string code = EmitUnder(CommaCulture(), spec);
        Assert.Equal(ScheduleEmitter.Emit(spec), code);

        var compilation = GeneratorHarness.Compilation(code);
        Assert.Empty(GeneratorHarness.CompileErrors(compilation));
        INamedTypeSymbol type = compilation.GetTypeByMetadataName("RoundTrip.S")!;
        IFieldSymbol Field(string name) => type.GetMembers(name).OfType<IFieldSymbol>().Single();

        Assert.True(Field("Objective").IsConst);
        Assert.Equal("global::Ddpm.Objective", Field("Objective").Type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat));
        Assert.Equal((object)objective, Field("Objective").ConstantValue);
        Assert.Equal((object)clip, Field("ClipX0").ConstantValue);
        Assert.Equal(BitConverter.DoubleToInt64Bits(threshold), BitConverter.DoubleToInt64Bits((double)Field("DynamicThreshold").ConstantValue!));
        Assert.Contains($"public const double DynamicThreshold = {threshold.ToString("R", CultureInfo.InvariantCulture)}d;", code);
    }

    /// <summary>"S.Name(Type name, ...)" with types by their simple names.</summary>
    static readonly SymbolDisplayFormat Signature = new(
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameOnly,
        genericsOptions: SymbolDisplayGenericsOptions.IncludeTypeParameters,
        memberOptions: SymbolDisplayMemberOptions.IncludeParameters | SymbolDisplayMemberOptions.IncludeContainingType,
        parameterOptions: SymbolDisplayParameterOptions.IncludeType | SymbolDisplayParameterOptions.IncludeName | SymbolDisplayParameterOptions.IncludeDefaultValue,
        miscellaneousOptions: SymbolDisplayMiscellaneousOptions.UseSpecialTypes | SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    [Fact]
    public void The_diffusion_is_built_with_the_constants_and_is_the_one_way_to_sample()
    {
        var spec = new ScheduleSpec(new TypeTarget("", "S", "public static ", "a test"), (int)ScheduleKind.Cosine, 4, 1e-4, 0.02, (int)Objective.V, true, 0);
        string code = ScheduleEmitter.Emit(spec);
        Assert.Contains("public static global::Ddpm.Diffusion.GaussianDiffusion Diffusion { get; } = new global::Ddpm.Diffusion.GaussianDiffusion(Tables, " +
                        "new global::Ddpm.Diffusion.DiffusionOptions(Objective, ClipX0, DynamicThreshold));", code);
        Assert.Contains("/// The model predicts the velocity v", code);

        var compilation = GeneratorHarness.Compilation(code);
        Assert.Empty(GeneratorHarness.CompileErrors(compilation));
        // No sampler wrappers per schedule: the class has no methods of its own (its members are constants, the tables
        // and Diffusion), so sampling goes through GaussianDiffusion, where every sampler is written once.
        var methods = compilation.GetTypeByMetadataName("S")!.GetMembers().OfType<IMethodSymbol>()
            .Where(m => m.MethodKind == MethodKind.Ordinary)
            .Select(m => m.ToDisplayString(Signature));
        Assert.Empty(methods);
        Assert.Equal("GaussianDiffusion S.Diffusion", compilation.GetTypeByMetadataName("S")!.GetMembers("Diffusion").Single().ToDisplayString(Signature.WithMemberOptions(SymbolDisplayMemberOptions.IncludeType | SymbolDisplayMemberOptions.IncludeContainingType)));
    }
}
