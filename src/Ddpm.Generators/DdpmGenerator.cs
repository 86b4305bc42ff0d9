using System;
using System.Threading;
using Ddpm.Generators.Diagnostics;
using Ddpm.Generators.Emit;
using Ddpm.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Ddpm.Generators.SpecCore;

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

            // A spec whose class an attributed class or another spec also generates gets DDPM020 instead of code.
            IncrementalValueProvider<System.Collections.Immutable.ImmutableArray<string>> attributedNames = context.SyntaxProvider
                .ForAttributeWithMetadataName(AttributeParser.UNetAttribute, static (node, _) => node is ClassDeclarationSyntax, static (ctx, _) => FullName(ctx.TargetSymbol))
                .Collect()
                .Combine(context.SyntaxProvider
                    .ForAttributeWithMetadataName(AttributeParser.NoiseScheduleAttribute, static (node, _) => node is ClassDeclarationSyntax, static (ctx, _) => FullName(ctx.TargetSymbol))
                    .Collect())
                .Select(static (names, _) => names.Left.AddRange(names.Right));
            yamlSpecs = yamlSpecs.Collect()
                .Combine(attributedNames)
                .SelectMany(static (x, _) => GeneratedNames.Check(x.Left, x.Right))
                .WithTrackingName(TrackingNames.GeneratedNameChecks);

            // Both front ends feed the same outputs and emitters; a spec's files are grouped under its name.
            var (attributedUNets, attributedSchedules) = RegisterOutputs(context, unets, schedules, AttributedHintName);
            RegisterOutputs(context,
                yamlSpecs.Where(static r => r.UNet != null).Select(static (r, _) => r.UNet!),
                yamlSpecs.Where(static r => r.Schedule != null).Select(static (r, _) => r.Schedule!),
                static target => YamlParser.HintName(target.Origin, target.ClassName + ".g.cs"));
            RegisterCatalog(context, yamlSpecs);

            // [UNet(Schedule = typeof(...))] classes join the catalog as YAML specs do, with the default training settings.
            IncrementalValuesProvider<CatalogLink> links = context.SyntaxProvider
                .ForAttributeWithMetadataName(AttributeParser.UNetAttribute,
                    static (node, _) => node is ClassDeclarationSyntax,
                    static (ctx, ct) => GuardLink(() => AttributeParser.ParseCatalogLink(ctx, ct), ctx.TargetNode))
                .WithTrackingName(TrackingNames.CatalogLinks);
            context.RegisterSourceOutput(links.Select(static (l, _) => l.Diagnostics), ReportDiagnostics);
            IncrementalValuesProvider<CatalogSpec> attributedCatalogs = links
                .Where(static l => l.ScheduleName != null)
                .Combine(attributedUNets.Collect())
                .Combine(attributedSchedules.Collect())
                .Select(static (x, _) => AttributedCatalog(x.Left.Left, x.Left.Right, x.Right))
                .Where(static c => c != null).Select(static (c, _) => c!)
                .WithTrackingName(TrackingNames.AttributedCatalogSpecs);
            context.RegisterSourceOutput(attributedCatalogs, static (spc, spec) =>
                AddSource(spc, AttributedHintName(spec.Target), () => CatalogEmitter.Emit(spec)));
        }

        /// <summary>Namespace.Class, as <see cref="TypeTarget.FullName"/> spells it.</summary>
        private static string FullName(ISymbol type) =>
            type.ContainingNamespace == null || type.ContainingNamespace.IsGlobalNamespace ? type.Name : type.ContainingNamespace.ToDisplayString() + "." + type.Name;

        /// <summary>Attributed types: one folder per namespace, so equal class names in two namespaces never collide.</summary>
        private static string AttributedHintName(TypeTarget target) =>
            target.Namespace.Length == 0 ? target.ClassName + ".g.cs" : target.Namespace + "/" + target.ClassName + ".g.cs";

        /// <summary>
        /// The catalog entry of a linked model and schedule, both valid; null while either has errors (reported at its
        /// declaration), so an invalid declaration registers nothing.
        /// </summary>
        private static CatalogSpec? AttributedCatalog(CatalogLink link, System.Collections.Immutable.ImmutableArray<UNetSpec> unets,
                                                      System.Collections.Immutable.ImmutableArray<ScheduleSpec> schedules)
        {
            UNetSpec? unet = null;
            foreach (UNetSpec candidate in unets)
                if (candidate.Target.FullName == link.Model.FullName) unet = candidate;
            ScheduleSpec? schedule = null;
            foreach (ScheduleSpec candidate in schedules)
                if (candidate.Target.FullName == link.ScheduleName) schedule = candidate;
            if (unet == null || schedule == null) return null;
            var target = new TypeTarget(unet.Target.Namespace, unet.Target.ClassName + "CatalogRegistration", "internal static ", link.Model.Origin);
            return new CatalogSpec(target, unet.Target.ClassName, unet.Target.Qualified, schedule.Target.Qualified, link.SourceFile,
                                   CatalogSpec.HashOf(unet, schedule), new TrainingSettings(new TrainingSpec()), unet.IsConditional);
        }

        /// <summary>Diagnostics from every result; sources from the valid specs only, which it returns.</summary>
        private static (IncrementalValuesProvider<UNetSpec>, IncrementalValuesProvider<ScheduleSpec>) RegisterOutputs(IncrementalGeneratorInitializationContext context,
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
            return (validUNets, validSchedules);
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

        /// <summary>The same for a catalog link: DDPM099 at the declaration, and no link.</summary>
        private static CatalogLink GuardLink(Func<CatalogLink> parse, SyntaxNode at)
        {
            try
            {
                return parse();
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                return new CatalogLink(new TypeTarget("", "", "", ""), null, "", new[] { Failure(e, LocationInfo.From(at)) }.ToEquatableArray());
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
                var at = YamlParser.Location(path, SpecSpan.FileStart);
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
        public const string CatalogLinks = nameof(CatalogLinks);
        public const string AttributedCatalogSpecs = nameof(AttributedCatalogSpecs);
        public const string GeneratedNameChecks = nameof(GeneratedNameChecks);
    }
}
