using System.Globalization;
using System.Linq;
using Ddpm.Generators.Helpers;
using Ddpm.Generators.Model;
using Microsoft.CodeAnalysis.CSharp;
using Ddpm.Generators.SpecCore;

namespace Ddpm.Generators.Emit
{
    /// <summary>
    /// Emits the ModelCatalog registration of a YAML spec's model: a module initializer that registers
    /// the model, its schedule's tables, the spec's architecture hash and its training settings when
    /// the assembly loads, so a program finds its compiled models by name or spec file without reflection.
    /// </summary>
    internal static class CatalogEmitter
    {
        public static string Emit(CatalogSpec spec)
        {
            var w = new SourceWriter();
            Header.Write(w);
            bool hasNamespace = spec.Target.Namespace.Length > 0;
            if (hasNamespace) w.Open("namespace " + spec.Target.Namespace);

            w.Line($"/// <summary>Registers {spec.ModelName} from {spec.SpecFile} in the model catalog when the assembly loads.</summary>");
            w.Line(Header.GeneratedCodeAttribute);
            w.Open($"{spec.Target.Modifiers}class {spec.Target.ClassName}");
            w.Line("/// <summary>Hash of the spec's model and schedule sections as compiled (SpecYaml.ArchitectureHash).</summary>");
            w.Line($"public const string ArchitectureHash = \"{spec.ArchitectureHash}\";");
            w.Line();
            w.Line("/// <summary>The spec's training settings (the defaults for any it does not set).</summary>");
            w.Open("public static global::Ddpm.Specs.TrainingSpec Training() => new global::Ddpm.Specs.TrainingSpec");
            WriteTraining(w, spec.Training.Value);
            w.Close(";");
            w.Line();
            w.Line("[global::System.Runtime.CompilerServices.ModuleInitializer]");
            w.Line("internal static void Register() =>");
            w.Line("    global::Ddpm.Models.ModelCatalog.Register(new global::Ddpm.Models.ModelEntry(");
            w.Line($"        {Literal(spec.ModelName)},");
            w.Line($"        {Literal(spec.SpecFile)},");
            w.Line($"        static () => new {spec.ModelType}(),");
            w.Line($"        {spec.ScheduleType}.Diffusion,");
            w.Line($"        {spec.ModelType}.Channels,");
            w.Line($"        {spec.ModelType}.ImageSize,");
            w.Line($"        {spec.ModelType}.ParameterCount,");
            w.Line("        ArchitectureHash,");
            w.Line("        Training(),");
            if (spec.Conditional)
            {
                w.Line($"        {spec.ModelType}.Stages,");
                w.Line($"        {spec.ModelType}.ClassConditioning));");
            }
            else w.Line($"        {spec.ModelType}.Stages));");
            w.Close();

            if (hasNamespace) w.Close();
            return w.ToString();
        }

        /// <summary>
        /// Every setting written out (SpecWriter.TrainingValues, the one list of training keys), so the registered settings
        /// do not depend on the runtime's defaults: key "optimizer.lr" becomes Optimizer = new OptimizerSpec { Lr = ... }.
        /// </summary>
        private static void WriteTraining(SourceWriter w, TrainingSpec t)
        {
            string open = "";
            foreach (var pair in SpecWriter.TrainingValues(t))
            {
                int dot = pair.Key.IndexOf('.');
                string mapping = dot < 0 ? "" : pair.Key.Substring(0, dot);
                if (mapping != open)
                {
                    if (open.Length > 0) w.Line("},");
                    if (mapping.Length > 0)
                    {
                        w.Line($"{Pascal(mapping)} = new global::Ddpm.Specs.{Pascal(mapping)}Spec");
                        w.Line("{");
                    }
                    open = mapping;
                }
                w.Line($"{(open.Length > 0 ? "    " : "")}{Pascal(pair.Key.Substring(dot + 1))} = {CSharp(pair.Value)},");
            }
            if (open.Length > 0) w.Line("},");
        }

        /// <summary>snake_case to the C# property name: min_snr_gamma -> MinSnrGamma.</summary>
        private static string Pascal(string key) =>
            string.Concat(key.Split('_').Select(part => part.Length == 0 ? part : char.ToUpperInvariant(part[0]) + part.Substring(1)));

        /// <summary>A setting as a C# literal; enums by their runtime type (global::Ddpm.LossKind.Huber).</summary>
        private static string CSharp(object? value) => value switch
        {
            null => "null",
            string s => Literal(s),
            bool b => b ? "true" : "false",
            int i => I(i),
            long l => l.ToString(CultureInfo.InvariantCulture) + "L",
            double d => D(d),
            string[] list => list.Length == 0 ? "global::System.Array.Empty<string>()" : "new string[] { " + string.Join(", ", list.Select(Literal)) + " }",
            System.Enum e => $"global::Ddpm.{e.GetType().Name}.{e}",
            _ => throw new System.ArgumentException("No C# form for " + value.GetType().Name, nameof(value)),
        };

        private static string Literal(string value) => SymbolDisplay.FormatLiteral(value, quote: true);
        private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
        private static string D(double value) => value.ToString("R", CultureInfo.InvariantCulture) + "d";
    }
}
