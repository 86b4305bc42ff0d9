using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Ddpm.Generators.Diagnostics;
using Ddpm.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators
{
    /// <summary>The attribute front end: [UNet], [DownStage], [MidStage], [Attention], [NoiseSchedule] -> declarations.</summary>
    internal static class AttributeParser
    {
        public const string UNetAttribute = "Ddpm.UNetAttribute";
        public const string DownStageAttribute = "Ddpm.DownStageAttribute";
        public const string MidStageAttribute = "Ddpm.MidStageAttribute";
        public const string AttentionAttribute = "Ddpm.AttentionAttribute";
        public const string NoiseScheduleAttribute = "Ddpm.NoiseScheduleAttribute";

        /// <summary>Maps the shared setting keys to the C# names the user wrote.</summary>
        private static readonly Dictionary<string, string> CSharpNames = new Dictionary<string, string>
        {
            ["channels"] = "Channels", ["image_size"] = "ImageSize", ["dim"] = "Dim", ["dim_mults"] = "DimMults",
            ["resnet_block_groups"] = "ResnetBlockGroups", ["attention.heads"] = "Heads", ["attention.dim_head"] = "DimHead",
            ["mid.attention"] = "Attention", ["kind"] = "Kind", ["timesteps"] = "Timesteps", ["beta_start"] = "BetaStart", ["beta_end"] = "BetaEnd",
            ["objective"] = "Objective", ["clip_x0"] = "ClipX0", ["dynamic_threshold"] = "DynamicThreshold",
            ["classes"] = "Classes", ["class_dropout"] = "ClassDropout", ["guidance"] = "Guidance",
        };

        private static string Display(string key)
        {
            if (CSharpNames.TryGetValue(key, out string? name)) return name;
            int dot = key.LastIndexOf('.');
            if (key.StartsWith("dim_mults[")) return "DimMults" + key.Substring("dim_mults".Length);
            if (dot > 0 && key.StartsWith("stages[")) return "DownStage." + Pascal(key.Substring(dot + 1));
            return key;
        }

        private static string Pascal(string snake) => string.Concat(snake.Split('_').Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p.Substring(1)));

        public static SpecResult<UNetSpec> ParseUNet(GeneratorAttributeSyntaxContext context, CancellationToken cancellation)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (ClassDeclarationSyntax)context.TargetNode;
            var source = new SpecSource(LocationInfo.From(syntax.Identifier.GetLocation()), Display);
            var diagnostics = CheckDeclaration(type, syntax);

            AttributeData unet = context.Attributes[0];
            var args = new AttributeArguments(unet, source, cancellation);
            int channels = args.Int("Channels", "channels", SpecDefaults.Channels);
            int imageSize = args.Int("ImageSize", "image_size", SpecDefaults.ImageSize);
            int dim = args.Int("Dim", "dim", SpecDefaults.Dim);
            int[] dimMults = args.IntArray("DimMults", "dim_mults", SpecDefaults.DimMults);
            int groups = args.Int("ResnetBlockGroups", "resnet_block_groups", SpecDefaults.ResnetBlockGroups);
            int classes = args.Int("Classes", "classes", SpecDefaults.Classes);
            double? classDropout = args.Has("ClassDropout") ? args.Double("ClassDropout", "class_dropout", SpecDefaults.ClassDropout) : (double?)null;
            double? guidance = args.Has("Guidance") ? args.Double("Guidance", "guidance", SpecDefaults.Guidance) : (double?)null;

            var stages = new List<StageDeclaration>();
            int midAttention = (int)SpecDefaults.MidAttention, heads = SpecDefaults.Heads, dimHead = SpecDefaults.DimHead;
            foreach (AttributeData attribute in type.GetAttributes())
            {
                cancellation.ThrowIfCancellationRequested();
                switch (attribute.AttributeClass?.ToDisplayString())
                {
                    case DownStageAttribute:
                        string key = $"stages[{stages.Count}]";
                        var stage = new AttributeArguments(attribute, source, cancellation, key);
                        stages.Add(new StageDeclaration(
                            stage.ConstructorInt(0, key + ".index", -1),
                            stage.Int("Blocks", key + ".blocks", SpecDefaults.StageBlocks),
                            stage.Int("Attention", key + ".attention", (int)SpecDefaults.StageAttention)));
                        break;
                    case MidStageAttribute:
                        midAttention = new AttributeArguments(attribute, source, cancellation, "mid").Int("Attention", "mid.attention", midAttention);
                        break;
                    case AttentionAttribute:
                        var attention = new AttributeArguments(attribute, source, cancellation, "attention");
                        heads = attention.Int("Heads", "attention.heads", heads);
                        dimHead = attention.Int("DimHead", "attention.dim_head", dimHead);
                        break;
                }
            }

            var declaration = new UNetDeclaration(Target(type, syntax, isStatic: false), channels, imageSize, dim, dimMults.ToEquatableArray(), groups,
                                                  stages.ToEquatableArray(), midAttention, heads, dimHead, classes, classDropout, guidance);
            return SpecValidator.Validate(declaration, source, diagnostics);
        }

        /// <summary>
        /// The catalog link of a [UNet] class: the schedule named by Schedule = typeof(...), which must be a [NoiseSchedule]
        /// class (DDPM019 at the argument otherwise), and the file the model is declared in.
        /// </summary>
        public static CatalogLink ParseCatalogLink(GeneratorAttributeSyntaxContext context, CancellationToken cancellation)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (ClassDeclarationSyntax)context.TargetNode;
            var target = Target(type, syntax, isStatic: false);
            string file = System.IO.Path.GetFileName(syntax.SyntaxTree.FilePath);
            AttributeData unet = context.Attributes[0];
            TypedConstant named = unet.NamedArguments.FirstOrDefault(a => a.Key == "Schedule").Value;
            if (named.Kind != TypedConstantKind.Type || !(named.Value is INamedTypeSymbol schedule))
                return new CatalogLink(target, null, file, EquatableArray<DiagnosticInfo>.Empty);
            if (schedule.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == NoiseScheduleAttribute))
                return new CatalogLink(target, schedule.ToDisplayString(), file, EquatableArray<DiagnosticInfo>.Empty);
            var argument = (unet.ApplicationSyntaxReference?.GetSyntax(cancellation) as AttributeSyntax)?.ArgumentList?.Arguments
                .FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == "Schedule");
            var at = LocationInfo.From(argument) ?? LocationInfo.From(syntax.Identifier.GetLocation());
            var error = DiagnosticInfo.Create(DiagnosticDescriptors.ScheduleNotDeclared, at, type.Name, schedule.ToDisplayString());
            return new CatalogLink(target, null, file, new[] { error }.ToEquatableArray());
        }

        public static SpecResult<ScheduleSpec> ParseSchedule(GeneratorAttributeSyntaxContext context, CancellationToken cancellation)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (ClassDeclarationSyntax)context.TargetNode;
            var source = new SpecSource(LocationInfo.From(syntax.Identifier.GetLocation()), Display);
            var diagnostics = CheckDeclaration(type, syntax);
            var args = new AttributeArguments(context.Attributes[0], source, cancellation);
            var schedule = new ScheduleSpec(
                Target(type, syntax, type.IsStatic),
                args.ConstructorInt(0, "kind", (int)ScheduleKind.Linear),
                args.Int("Timesteps", "timesteps", SpecDefaults.Timesteps),
                args.Double("BetaStart", "beta_start", SpecDefaults.BetaStart),
                args.Double("BetaEnd", "beta_end", SpecDefaults.BetaEnd),
                args.Int("Objective", "objective", (int)SpecDefaults.Objective),
                args.Bool("ClipX0", "clip_x0", SpecDefaults.ClipX0),
                args.Double("DynamicThreshold", "dynamic_threshold", SpecDefaults.DynamicThreshold));
            return SpecValidator.Validate(schedule, source, diagnostics);
        }

        private static List<DiagnosticInfo> CheckDeclaration(INamedTypeSymbol type, ClassDeclarationSyntax syntax)
        {
            var diagnostics = new List<DiagnosticInfo>();
            var at = LocationInfo.From(syntax.Identifier.GetLocation());
            if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotPartial, at, type.Name));
            if (type.ContainingType != null || type.IsGenericType)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotTopLevel, at, type.Name));
            return diagnostics;
        }

        private static TypeTarget Target(INamedTypeSymbol type, ClassDeclarationSyntax syntax, bool isStatic)
        {
            string ns = type.ContainingNamespace.IsGlobalNamespace ? "" : type.ContainingNamespace.ToDisplayString();
            // A partial part may omit accessibility; the user's declaration decides it.
            return new TypeTarget(ns, type.Name, isStatic ? "static " : "", "attributes on " + type.Name);
        }

        /// <summary>Reads an attribute's arguments and records where each one was written.</summary>
        private sealed class AttributeArguments
        {
            private readonly AttributeData attribute;
            private readonly SpecSource source;
            private readonly AttributeSyntax? syntax;

            public AttributeArguments(AttributeData attribute, SpecSource source, CancellationToken cancellation, string? key = null)
            {
                this.attribute = attribute;
                this.source = source;
                syntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellation) as AttributeSyntax;
                if (key != null) source.Add(key, LocationInfo.From(syntax));
            }

            public int Int(string name, string key, int fallback)
            {
                Locate(name, key);
                TypedConstant value = Named(name);
                return value.Kind == TypedConstantKind.Primitive || value.Kind == TypedConstantKind.Enum ? ToInt(value.Value, fallback) : fallback;
            }

            public double Double(string name, string key, double fallback)
            {
                Locate(name, key);
                TypedConstant value = Named(name);
                return value.Value is double d ? d : value.Value is float f ? f : value.Value is int i ? i : fallback;
            }

            public bool Bool(string name, string key, bool fallback)
            {
                Locate(name, key);
                return Named(name).Value is bool b ? b : fallback;
            }

            public int[] IntArray(string name, string key, int[] fallback)
            {
                Locate(name, key);
                TypedConstant value = Named(name);
                if (value.Kind != TypedConstantKind.Array || value.IsNull) return fallback;
                var result = value.Values.Select(v => ToInt(v.Value, 0)).ToArray();
                // Point each element's diagnostics at the element itself where we can see it.
                IEnumerable<SyntaxNode> elements = Argument(name)?.Expression switch
                {
                    ArrayCreationExpressionSyntax creation => (IEnumerable<SyntaxNode>?)creation.Initializer?.Expressions ?? Enumerable.Empty<SyntaxNode>(),
                    ImplicitArrayCreationExpressionSyntax creation => creation.Initializer.Expressions,
                    CollectionExpressionSyntax collection => collection.Elements,
                    _ => Enumerable.Empty<SyntaxNode>(),
                };
                int position = 0;
                foreach (SyntaxNode element in elements)
                    source.Add($"{key}[{position++}]", LocationInfo.From(element));
                return result;
            }

            public int ConstructorInt(int index, string key, int fallback)
            {
                var positional = syntax?.ArgumentList?.Arguments.Where(a => a.NameEquals == null).ElementAtOrDefault(index);
                source.Add(key, LocationInfo.From(positional));
                return attribute.ConstructorArguments.Length > index ? ToInt(attribute.ConstructorArguments[index].Value, fallback) : fallback;
            }

            /// <summary>Whether the attribute sets <paramref name="name"/> (for settings whose default depends on others).</summary>
            public bool Has(string name) => attribute.NamedArguments.Any(a => a.Key == name);

            private TypedConstant Named(string name)
            {
                foreach (KeyValuePair<string, TypedConstant> pair in attribute.NamedArguments)
                    if (pair.Key == name) return pair.Value;
                return default;
            }

            private void Locate(string name, string key) => source.Add(key, LocationInfo.From(Argument(name)));

            private AttributeArgumentSyntax? Argument(string name) =>
                syntax?.ArgumentList?.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);

            private static int ToInt(object? value, int fallback) => value is int i ? i : fallback;
        }
    }
}
