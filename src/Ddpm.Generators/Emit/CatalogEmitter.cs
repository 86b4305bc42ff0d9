using System.Globalization;
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
            w.Line($"        {spec.ModelType}.Stages));");
            w.Close();

            if (hasNamespace) w.Close();
            return w.ToString();
        }

        /// <summary>Every property written out, so the registered settings do not depend on the runtime's defaults.</summary>
        private static void WriteTraining(SourceWriter w, TrainingSpec t)
        {
            w.Line($"Dataset = {Literal(t.Dataset)},");
            w.Line($"BatchSize = {I(t.BatchSize)},");
            w.Line($"Epochs = {I(t.Epochs)},");
            w.Line($"Steps = {(t.Steps.HasValue ? I(t.Steps.Value) : "null")},");
            w.Line($"Loss = global::Ddpm.LossKind.{t.Loss},");
            w.Line($"MinSnrGamma = {D(t.MinSnrGamma)},");
            w.Line("Optimizer = new global::Ddpm.Specs.OptimizerSpec");
            w.Line("{");
            w.Line($"    Kind = {Literal(t.Optimizer.Kind)},");
            w.Line($"    Lr = {D(t.Optimizer.Lr)},");
            w.Line($"    Beta1 = {D(t.Optimizer.Beta1)},");
            w.Line($"    Beta2 = {D(t.Optimizer.Beta2)},");
            w.Line($"    WeightDecay = {D(t.Optimizer.WeightDecay)},");
            w.Line("},");
            w.Line($"WarmupSteps = {I(t.WarmupSteps)},");
            w.Line($"GradClip = {D(t.GradClip)},");
            w.Line($"EmaDecay = {D(t.EmaDecay)},");
            w.Line($"EmaWarmup = global::Ddpm.EmaWarmup.{t.EmaWarmup},");
            w.Line($"EmaPower = {D(t.EmaPower)},");
            w.Line($"EmaInvGamma = {D(t.EmaInvGamma)},");
            w.Line($"RandomFlip = {(t.RandomFlip ? "true" : "false")},");
            w.Line($"SampleEvery = {I(t.SampleEvery)},");
            w.Line($"CheckpointEvery = {I(t.CheckpointEvery)},");
            w.Line("Eval = new global::Ddpm.Specs.EvalSpec");
            w.Line("{");
            w.Line($"    Every = {I(t.Eval.Every)},");
            w.Line($"    Samples = {I(t.Eval.Samples)},");
            w.Line($"    Sampler = global::Ddpm.SamplerKind.{t.Eval.Sampler},");
            w.Line($"    Steps = {I(t.Eval.Steps)},");
            w.Line("},");
            w.Line($"Seed = {t.Seed.ToString(CultureInfo.InvariantCulture)}L,");
            w.Line($"Precision = {Literal(t.Precision)},");
        }

        private static string Literal(string value) => SymbolDisplay.FormatLiteral(value, quote: true);
        private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
        private static string D(double value) => value.ToString("R", CultureInfo.InvariantCulture) + "d";
    }
}
