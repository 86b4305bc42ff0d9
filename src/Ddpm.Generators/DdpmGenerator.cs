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
    /// Flow: front end (attributes or YAML) -> declaration -> SpecValidator -> spec (IR) -> emitters.
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

            // YAML specs (AdditionalFiles *.yaml / *.yml) -> the same results through the same validator,
            // plus a catalog entry and the diagnostics of the rest of the file. Other YAML gives nothing.
            IncrementalValuesProvider<YamlSpecResult> yamlSpecs = context.AdditionalTextsProvider
                .Where(static file => YamlParser.IsYamlFile(file.Path))
                .Select(static (file, ct) => GuardYaml(file.Path, () => YamlParser.Parse(file.Path, file.GetText(ct)?.ToString(), ct)))
                .WithTrackingName(TrackingNames.YamlSpecs);

            // Both front ends feed the same outputs and emitters; a spec's files are grouped under its name.
            // Attributed types: one folder per namespace, so equal class names in two namespaces never collide.
            RegisterOutputs(context, unets, schedules, static target =>
                target.Namespace.Length == 0 ? target.ClassName + ".g.cs" : target.Namespace + "/" + target.ClassName + ".g.cs");
            RegisterOutputs(context,
                yamlSpecs.Where(static r => r.UNet != null).Select(static (r, _) => r.UNet!),
                yamlSpecs.Where(static r => r.Schedule != null).Select(static (r, _) => r.Schedule!),
                static target => YamlParser.HintName(target.Origin, target.ClassName + ".g.cs"));
            RegisterCatalog(context, yamlSpecs);
        }

        /// <summary>Diagnostics from every result; sources from the valid specs only.</summary>
        private static void RegisterOutputs(IncrementalGeneratorInitializationContext context,
                                            IncrementalValuesProvider<SpecResult<UNetSpec>> unets,
                                            IncrementalValuesProvider<SpecResult<ScheduleSpec>> schedules,
                                            Func<TypeTarget, string> hintName)
        {
            context.RegisterSourceOutput(unets.Select(static (r, _) => r.Diagnostics), ReportDiagnostics);
            context.RegisterSourceOutput(schedules.Select(static (r, _) => r.Diagnostics), ReportDiagnostics);

            IncrementalValuesProvider<UNetSpec> validUNets = unets
                .Where(static r => r.Spec != null).Select(static (r, _) => r.Spec!)
                .WithTrackingName(TrackingNames.UNetSpecs);
            IncrementalValuesProvider<ScheduleSpec> validSchedules = schedules
                .Where(static r => r.Spec != null).Select(static (r, _) => r.Spec!)
                .WithTrackingName(TrackingNames.ScheduleSpecs);

            context.RegisterSourceOutput(validUNets, (spc, spec) =>
                AddSource(spc, hintName(spec.Target), () => UNetEmitter.Emit(spec)));
            context.RegisterSourceOutput(validSchedules, (spc, spec) =>
                AddSource(spc, hintName(spec.Target), () => ScheduleEmitter.Emit(spec)));
        }

        /// <summary>A YAML spec's own diagnostics, and its ModelCatalog registration when it is valid.</summary>
        private static void RegisterCatalog(IncrementalGeneratorInitializationContext context, IncrementalValuesProvider<YamlSpecResult> yamlSpecs)
        {
            context.RegisterSourceOutput(yamlSpecs.Select(static (r, _) => r.Diagnostics), ReportDiagnostics);
            IncrementalValuesProvider<CatalogSpec> catalogs = yamlSpecs
                .Where(static r => r.Catalog != null).Select(static (r, _) => r.Catalog!)
                .WithTrackingName(TrackingNames.CatalogSpecs);
            context.RegisterSourceOutput(catalogs, static (spc, spec) =>
                AddSource(spc, YamlParser.HintName(spec.SpecFile, spec.ModelName + ".Catalog.g.cs"), () => CatalogEmitter.Emit(spec)));
        }

        private static void ReportDiagnostics(SourceProductionContext context, EquatableArray<DiagnosticInfo> diagnostics)
        {
            foreach (DiagnosticInfo diagnostic in diagnostics)
                context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }

        private static void AddSource(SourceProductionContext context, string hintName, Func<string> emit)
        {
            try
            {
                context.AddSource(hintName, emit());
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InternalError, Location.None, $"{hintName}: {e.Message}"));
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
                return new SpecResult<T>(null, new[] { Failure(e, LocationInfo.From(at)) }.ToEquatableArray());
            }
        }

        /// <summary>The same for a YAML spec: DDPM099 at the start of the file.</summary>
        private static YamlSpecResult GuardYaml(string path, Func<YamlSpecResult> parse)
        {
            try
            {
                return parse();
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                var at = YamlParser.Location(path, Specs.SpecSpan.FileStart);
                return YamlSpecResult.None with { Diagnostics = new[] { Failure(e, at) }.ToEquatableArray() };
            }
        }

        private static DiagnosticInfo Failure(Exception e, LocationInfo? at) =>
            DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, at, e.GetType().Name + ": " + e.Message);
    }

    /// <summary>Names of the pipeline steps, so tests can check what was cached.</summary>
    public static class TrackingNames
    {
        public const string UNetDeclarations = nameof(UNetDeclarations);
        public const string ScheduleDeclarations = nameof(ScheduleDeclarations);
        public const string UNetSpecs = nameof(UNetSpecs);
        public const string ScheduleSpecs = nameof(ScheduleSpecs);
        public const string YamlSpecs = nameof(YamlSpecs);
        public const string CatalogSpecs = nameof(CatalogSpecs);
    }
}
