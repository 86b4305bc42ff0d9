using System;
using System.Threading;
using Ddpm.Generators.Diagnostics;
using Ddpm.Generators.Emit;
using Ddpm.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Ddpm.Generators
{
    /// <summary>
    /// Turns declared U-Nets and noise schedules into TorchSharp code.
    /// Flow: front end (attributes) -> declaration -> SpecValidator -> spec (IR) -> emitters.
    /// Diagnostics and sources are separate outputs: sources depend on the spec alone.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed partial class DdpmGenerator : IIncrementalGenerator
    {
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            // [UNet] classes -> validated UNetSpec + diagnostics.
            IncrementalValuesProvider<SpecResult<UNetSpec>> unets = context.SyntaxProvider
                .ForAttributeWithMetadataName(AttributeParser.UNetAttribute,
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => Guard(() => AttributeParser.ParseUNet(ctx, ct), ctx.TargetNode))
                .WithTrackingName(TrackingNames.UNetDeclarations);

            // [NoiseSchedule] classes -> validated ScheduleSpec + diagnostics.
            IncrementalValuesProvider<SpecResult<ScheduleSpec>> schedules = context.SyntaxProvider
                .ForAttributeWithMetadataName(AttributeParser.NoiseScheduleAttribute,
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => Guard(() => AttributeParser.ParseSchedule(ctx, ct), ctx.TargetNode))
                .WithTrackingName(TrackingNames.ScheduleDeclarations);

            RegisterOutputs(context, unets, schedules);
        }

        /// <summary>Diagnostics from every result; sources from the valid specs only.</summary>
        private static void RegisterOutputs(IncrementalGeneratorInitializationContext context,
                                            IncrementalValuesProvider<SpecResult<UNetSpec>> unets,
                                            IncrementalValuesProvider<SpecResult<ScheduleSpec>> schedules)
        {
            context.RegisterSourceOutput(unets.Select(static (r, _) => r.Diagnostics), ReportDiagnostics);
            context.RegisterSourceOutput(schedules.Select(static (r, _) => r.Diagnostics), ReportDiagnostics);

            IncrementalValuesProvider<UNetSpec> validUNets = unets
                .Where(static r => r.Spec != null).Select(static (r, _) => r.Spec!)
                .WithTrackingName(TrackingNames.UNetSpecs);
            IncrementalValuesProvider<ScheduleSpec> validSchedules = schedules
                .Where(static r => r.Spec != null).Select(static (r, _) => r.Spec!)
                .WithTrackingName(TrackingNames.ScheduleSpecs);

            context.RegisterSourceOutput(validUNets, static (spc, spec) =>
                AddSource(spc, spec.Target, () => UNetEmitter.Emit(spec)));
            context.RegisterSourceOutput(validSchedules, static (spc, spec) =>
                AddSource(spc, spec.Target, () => ScheduleEmitter.Emit(spec)));
        }

        private static void ReportDiagnostics(SourceProductionContext context, EquatableArray<DiagnosticInfo> diagnostics)
        {
            foreach (DiagnosticInfo diagnostic in diagnostics)
                context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }

        private static void AddSource(SourceProductionContext context, TypeTarget target, Func<string> emit)
        {
            try
            {
                context.AddSource(target.ClassName + ".g.cs", emit());
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InternalError, Location.None, $"{target.ClassName}: {e.Message}"));
            }
        }

        /// <summary>The generator never throws: an unexpected failure becomes DDPM099 at the declaration.</summary>
        private static SpecResult<T> Guard<T>(Func<SpecResult<T>> parse, SyntaxNode at) where T : class
        {
            try
            {
                return parse();
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                var info = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, LocationInfo.From(at), e.GetType().Name + ": " + e.Message);
                return new SpecResult<T>(null, new[] { info }.ToEquatableArray());
            }
        }
    }

    /// <summary>Names of the pipeline steps, so tests can check what was cached.</summary>
    public static class TrackingNames
    {
        public const string UNetDeclarations = nameof(UNetDeclarations);
        public const string ScheduleDeclarations = nameof(ScheduleDeclarations);
        public const string UNetSpecs = nameof(UNetSpecs);
        public const string ScheduleSpecs = nameof(ScheduleSpecs);
        public const string YamlSpecs = nameof(YamlSpecs);
    }
}
