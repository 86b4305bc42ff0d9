using System.CommandLine;
using System.Globalization;
using Ddpm.Imaging;
using Ddpm.Schedules;
using Ddpm.Specs;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>`ddpm inspect &lt;spec|model&gt;`: parameters, shapes, state-dict keys and the schedule's key values.</summary>
internal static class InspectCommand
{
    public static Command Create(TextWriter output)
    {
        var target = new Argument<string?>("spec") { Description = "A YAML spec or a compiled model name (none: list the models, as `ddpm list`).", Arity = ArgumentArity.ZeroOrOne };
        var plot = new Option<string?>("--plot") { Description = "Write the schedule curves to this PNG.", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("inspect", "Show a model's parameters, per-stage shapes, state-dict keys and its schedule.") { target, plot };
        command.SetAction(parse =>
        {
            if (parse.GetValue(target) is not { } name)
            {
                ListCommand.Write(output);
                return DdpmCli.Ok;
            }
            // The plot's file is checked before anything is printed (the same rule as every command's outputs).
            string? PlotPath(string model)
            {
                if (parse.GetResult(plot) is null) return null;
                string file = parse.GetValue(plot) ?? $"{model}-schedule.png";
                Options.CheckWritableFile(file, "--plot", [name]);
                return file;
            }
            if (ModelResolver.Uncompiled(name) is { Model: { } declared, Schedule: { } declaredSchedule } document)
            {
                string? declaredPlot = PlotPath(declared.Name);
                WriteUncompiled(name, declared, declaredSchedule, document, output);
                WriteSchedule(ScheduleMath.Tables(declaredSchedule.Kind, declaredSchedule.Timesteps, declaredSchedule.BetaStart, declaredSchedule.BetaEnd),
                              declared.Name, declaredPlot, output);
                return DdpmCli.Ok;
            }
            var resolved = ModelResolver.Resolve(name);
            var entry = resolved.Entry;
            string? plotPath = PlotPath(entry.Name);
            using var model = entry.CreateModel();
            long live = model.parameters().Sum(p => p.numel());
            output.WriteLine($"{entry.Name} ({ListCommand.Source(entry)}): {live:N0} parameters (generator: {entry.ParameterCount:N0})");
            string labels = entry.Conditioning is null ? "" : " (and [B] class labels)";
            output.WriteLine($"input: [B, {entry.Channels}, {entry.ImageSize}, {entry.ImageSize}] images and [B] timesteps{labels} -> {Prediction(entry.Diffusion.Options.Objective)} of the same shape");
            if (entry.Conditioning is { } conditioning)
                output.WriteLine(Classes(conditioning, Ddpm.Data.Datasets.KnownClassNames(entry.Training.Dataset)));

            output.WriteLine();
            output.WriteLine("stages:");
            foreach (string stage in entry.Stages ?? Array.Empty<string>()) output.WriteLine($"  {stage}");
            using (no_grad())
            {
                using var scope = NewDisposeScope();
                var y = model.forward(randn(entry.BatchShape(1)), zeros(1, ScalarType.Int64));
                output.WriteLine($"  forward check: [1, {entry.Channels}, {entry.ImageSize}, {entry.ImageSize}] -> {Shape(y.shape)}");
            }

            output.WriteLine();
            output.WriteLine("state dict:");
            foreach (var (key, value) in model.state_dict())
                output.WriteLine($"  {key} {Shape(value.shape)}");

            WriteSchedule(entry.Schedule, entry.Name, plotPath, output);
            return DdpmCli.Ok;
        });
        return command;
    }

    /// <summary>"class-conditional: 10 classes (0 t-shirt/top, ...) and the null class 10; label dropout 0.1, guidance 3 by default".</summary>
    private static string Classes(Ddpm.Conditioning.ClassConditioning c, IReadOnlyList<string>? names)
    {
        string list = names is not null && names.Count == c.Classes ? " (" + string.Join(", ", names.Select((n, i) => $"{i} {n}")) + ")" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"class-conditional: {c.Classes} classes{list} and the null class {c.NullClass}; label dropout {c.Dropout}, guidance {c.Guidance} by default");
    }

    /// <summary>
    /// A spec whose model is not compiled into this ddpm (a spec of the user's own project): what the declaration says;
    /// the parameter count, stage shapes and state-dict keys come from building the project that holds it.
    /// </summary>
    private static void WriteUncompiled(string path, ModelSection m, ScheduleSection schedule, SpecDocument document, TextWriter output)
    {
        output.WriteLine($"{m.Name} (spec {Path.GetFileName(path)}, not compiled into this ddpm): declared in {(m.Namespace.Length > 0 ? m.Namespace : "the project's namespace")}; " +
                         "build the project that holds the spec for its parameter count, stage shapes and state-dict keys");
        output.WriteLine($"input: [B, {m.Channels}, {m.ImageSize}, {m.ImageSize}] images and [B] timesteps -> {Prediction(schedule.Objective)} of the same shape");
        output.WriteLine();
        output.WriteLine("declared:");
        output.WriteLine($"  dim {m.Dim}, dim_mults [{string.Join(", ", m.DimMults)}], resnet_block_groups {m.ResnetBlockGroups}, attention heads {m.Heads} x {m.DimHead}");
        for (int i = 0; i < m.Stages.Count; i++)
            output.WriteLine($"  stage {i}: {m.Stages[i].Blocks} ResNet blocks, {SpecYaml.Spelling(m.Stages[i].Attention)} attention");
        output.WriteLine($"  mid: {SpecYaml.Spelling(m.MidAttention)} attention");
        if (m.Classes > 0)
            output.WriteLine("  " + Classes(new Ddpm.Conditioning.ClassConditioning(m.Classes, m.ClassDropout ?? SpecDefaults.ClassDropout, m.Guidance ?? SpecDefaults.Guidance),
                                                Ddpm.Data.Datasets.KnownClassNames(document.Training.Dataset)));
        output.WriteLine($"  schedule: {SpecYaml.Spelling(schedule.Kind)}, objective {SpecYaml.Spelling(schedule.Objective)}");
        output.WriteLine($"  architecture hash {document.ArchitectureHash}");
        if (document.HasTraining)
        {
            output.WriteLine();
            output.Write(SpecWriter.TrainingYaml(document.Training));
        }
    }

    /// <summary>The schedule's key values at a few timesteps, and its curves as a PNG when asked.</summary>
    private static void WriteSchedule(ScheduleTables s, string modelName, string? plotPath, TextWriter output)
    {
        int last = s.Timesteps - 1;
        output.WriteLine();
        output.WriteLine($"schedule: T = {s.Timesteps}, fingerprint {s.Fingerprint}");
        output.WriteLine("  t      beta        alpha_bar   sqrt(1-alpha_bar)  posterior_var");
        foreach (int t in new[] { 0, 1, s.Timesteps / 4, s.Timesteps / 2, 3 * s.Timesteps / 4, last }.Distinct())
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {t,-6} {s.Betas[t],-11:G4} {s.AlphasCumprod[t],-11:G4} {s.SqrtOneMinusAlphasCumprod[t],-18:G4} {s.PosteriorVariance[t]:G4}"));
        if (plotPath is null) return;
        var steps = Enumerable.Range(0, s.Timesteps).Select(t => (double)t).ToArray();
        LinePlot.SavePng(plotPath, $"{modelName}: noise schedule", new[]
        {
            ("beta_t", steps, s.Betas),
            ("alpha_bar_t", steps, s.AlphasCumprod),
            ("sqrt(1 - alpha_bar_t)", steps, s.SqrtOneMinusAlphasCumprod),
        }, xLabel: "t");
        output.WriteLine($"wrote {plotPath}");
    }

    /// <summary>What the network's output is, by the schedule's objective.</summary>
    private static string Prediction(Objective objective) => objective switch
    {
        Objective.X0 => "the predicted clean image x_0",
        Objective.V => "the predicted velocity v",
        _ => "the predicted noise eps",
    };

    private static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";

}
