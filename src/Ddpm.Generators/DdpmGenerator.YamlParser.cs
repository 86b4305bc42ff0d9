using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Ddpm.Generators.Diagnostics;
using Ddpm.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators
{
    /// <summary>
    /// The YAML front end: a spec file (model, schedule, training) -> the same declarations the
    /// attribute front end produces, validated by the same SpecValidator, plus the catalog entry.
    /// Reading is SpecYaml's, the reader the runtime uses too; this class only maps its values,
    /// locations and errors onto the generator's IR and diagnostics.
    /// </summary>
    internal static class YamlParser
    {
        public static bool IsYamlFile(string path) =>
            path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);

        /// <summary>
        /// "fashion-mnist/FashionMnistUNet.g.cs": a spec's files under its name, so two specs that
        /// declare the same class (in different namespaces, or by mistake) never collide as sources.
        /// </summary>
        public static string HintName(string specFile, string file)
        {
            string stem = Path.GetFileNameWithoutExtension(specFile);
            var folder = new StringBuilder(stem.Length);
            foreach (char c in stem) folder.Append(c < 128 && (char.IsLetterOrDigit(c) || c == '-' || c == '_') ? c : '_');
            return (folder.Length == 0 ? "_" : folder.ToString()) + "/" + file;
        }

        /// <summary>The schedule's class name when the spec does not give one: FashionMnistUNet -> FashionMnistSchedule.</summary>
        public static string ScheduleNameFor(string modelName) =>
            (modelName.EndsWith("UNet", StringComparison.Ordinal) ? modelName.Substring(0, modelName.Length - 4) : modelName) + "Schedule";

        public static YamlSpecResult Parse(string path, string? text, CancellationToken cancellation)
        {
            if (text == null) return YamlSpecResult.None;
            SpecDocument document = SpecYaml.Read(text);
            cancellation.ThrowIfCancellationRequested();
            if (!document.IsSpec) return YamlSpecResult.None;

            string file = Path.GetFileName(path);
            ModelSection? model = document.Model;
            ScheduleSection? schedule = document.Schedule;
            string scheduleName = schedule == null ? ""
                : schedule.Name.Length > 0 ? schedule.Name
                : model != null && model.Name.Length > 0 ? ScheduleNameFor(model.Name) : "";
            IEnumerable<SpecError> errors = document.Errors.Concat(CheckNames(document, scheduleName));

            // Errors inside a section travel with its declaration (they stop its code); the rest are the file's.
            var modelErrors = new List<DiagnosticInfo>();
            var scheduleErrors = new List<DiagnosticInfo>();
            var fileErrors = new List<DiagnosticInfo>();
            foreach (SpecError error in errors)
            {
                DiagnosticInfo info = DiagnosticInfo.Create(DiagnosticDescriptors.For(error.Kind), Location(path, error.Span), error.Arguments.ToArray<object>());
                if (model != null && InSection(error.Path, "model")) modelErrors.Add(info);
                else if (schedule != null && InSection(error.Path, "schedule")) scheduleErrors.Add(info);
                else fileErrors.Add(info);
            }

            SpecResult<UNetSpec>? unet = null;
            if (model != null)
            {
                var target = new TypeTarget(model.Namespace, model.Name, "public ", file);
                var declaration = new UNetDeclaration(target, model.Channels, model.ImageSize, model.Dim, model.DimMults.ToEquatableArray(),
                    model.ResnetBlockGroups, model.Stages.Select((s, i) => new StageDeclaration(i, s.Blocks, (int)s.Attention)).ToEquatableArray(),
                    (int)model.MidAttention, model.Heads, model.DimHead, model.Classes, model.ClassDropout, model.Guidance);
                unet = SpecValidator.Validate(declaration, Source(path, document, "model"), modelErrors);
            }

            SpecResult<ScheduleSpec>? scheduleResult = null;
            if (schedule != null)
            {
                var target = new TypeTarget(model?.Namespace ?? "", scheduleName, "public static ", file);
                var spec = new ScheduleSpec(target, (int)schedule.Kind, schedule.Timesteps, schedule.BetaStart, schedule.BetaEnd,
                                            (int)schedule.Objective, schedule.ClipX0, schedule.DynamicThreshold);
                scheduleResult = SpecValidator.Validate(spec, Source(path, document, "schedule"), scheduleErrors);
                // Without a name (the model's is missing or invalid, reported there) there is nothing to emit.
                if (scheduleName.Length == 0) scheduleResult = scheduleResult with { Spec = null };
            }

            CatalogSpec? catalog = null;
            if (unet?.Spec is UNetSpec unetSpec && scheduleResult?.Spec is ScheduleSpec scheduleSpec && fileErrors.Count == 0)
            {
                var target = new TypeTarget(unetSpec.Target.Namespace, unetSpec.Target.ClassName + "CatalogRegistration", "internal static ", file);
                catalog = new CatalogSpec(target, unetSpec.Target.ClassName, unetSpec.Target.Qualified, scheduleSpec.Target.Qualified,
                                          file, CatalogSpec.HashOf(unetSpec, scheduleSpec), new TrainingSettings(document.Training),
                                          unetSpec.IsConditional);
            }
            // Where the generated names come from, for DDPM020 (a name another declaration also generates): the schedule's
            // own name, or the model's name it was derived from.
            LocationInfo? modelNameAt = document.Values.TryGetValue("model.name", out SpecSpan? modelSpan) ? Location(path, modelSpan) : null;
            LocationInfo? scheduleNameAt = document.Values.TryGetValue("schedule.name", out SpecSpan? scheduleSpan) ? Location(path, scheduleSpan) : modelNameAt;
            return new YamlSpecResult(unet, scheduleResult, catalog, fileErrors.ToEquatableArray(), modelNameAt, scheduleNameAt);
        }

        /// <summary>
        /// The name rules SpecYaml cannot know: C# keywords, and a schedule named like its model
        /// (both would generate the same type).
        /// </summary>
        private static IEnumerable<SpecError> CheckNames(SpecDocument document, string scheduleName)
        {
            const string identifier = "a C# identifier that is not a keyword";
            if (document.Model != null)
            {
                if (IsKeyword(document.Model.Name))
                    yield return Invalid("model.name", identifier, document.Model.Name);
                if (document.Model.Namespace.Split('.').Any(IsKeyword))
                    yield return Invalid("model.namespace", "a namespace of C# identifiers that are not keywords", document.Model.Namespace);
            }
            if (document.Schedule != null && document.Schedule.Name.Length > 0)
            {
                if (IsKeyword(document.Schedule.Name))
                    yield return Invalid("schedule.name", identifier, document.Schedule.Name);
                else if (document.Model != null && scheduleName == document.Model.Name)
                    yield return Invalid("schedule.name", "a name other than model.name", scheduleName);
            }

            SpecError Invalid(string key, string expected, string value) =>
                new SpecError(SpecErrorKind.InvalidName, key, document.Values.TryGetValue(key, out SpecSpan? span) ? span : SpecSpan.FileStart, key, expected, value);
        }

        private static bool IsKeyword(string name) => name.Length > 0 && SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None;

        /// <summary>
        /// The section's locations under the keys the validator uses ("channels", "stages[1].attention"),
        /// named as the user wrote them; the declaration is the section's key.
        /// </summary>
        private static SpecSource Source(string path, SpecDocument document, string section)
        {
            var source = new SpecSource(document.Keys.TryGetValue(section, out SpecSpan? key) ? Location(path, key) : null, static name => name);
            string prefix = section + ".";
            foreach (KeyValuePair<string, SpecSpan> value in document.Values)
                if (value.Key.StartsWith(prefix, StringComparison.Ordinal))
                    source.Add(value.Key.Substring(prefix.Length), Location(path, value.Value));
            return source;
        }

        private static bool InSection(string path, string section) =>
            path == section || path.StartsWith(section + ".", StringComparison.Ordinal);

        /// <summary>YamlDotNet's marks (1-based lines and columns) as a Roslyn location in the spec file.</summary>
        public static LocationInfo Location(string path, SpecSpan span) =>
            new LocationInfo(path, TextSpan.FromBounds(span.Start, span.End),
                new LinePositionSpan(new LinePosition(Math.Max(0, span.Line - 1), Math.Max(0, span.Column - 1)),
                                     new LinePosition(Math.Max(0, span.EndLine - 1), Math.Max(0, span.EndColumn - 1))));
    }
}
