using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Ddpm.Generators.Diagnostics;
using Ddpm.Generators.Model;

namespace Ddpm.Generators
{
    /// <summary>
    /// One rule across declarations: no two of them generate the same type. A YAML spec's model and schedule classes are
    /// the spec's own; a [UNet] or [NoiseSchedule] class gets generated members too. When a spec's class is also an
    /// attributed class or another spec's class, both would emit the same members (errors inside generated code), so
    /// the spec reports DDPM020 at the name that gives the type and generates nothing; the attributed class keeps its code.
    /// </summary>
    internal static class GeneratedNames
    {
        /// <summary>The specs, each unchanged or, when one of its types is generated elsewhere too, without code and with DDPM020.</summary>
        /// <param name="attributed">Full names of the [UNet] and [NoiseSchedule] classes of the compilation.</param>
        public static IEnumerable<YamlSpecResult> Check(ImmutableArray<YamlSpecResult> specs, ImmutableArray<string> attributed)
        {
            var attributedNames = new HashSet<string>(attributed, StringComparer.Ordinal);
            // Which spec files generate each name (a spec's model and schedule never share one: SpecYaml's rule).
            var bySpec = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (YamlSpecResult spec in specs)
                foreach (TypeTarget target in Targets(spec))
                {
                    if (!bySpec.TryGetValue(target.FullName, out List<string>? files)) bySpec[target.FullName] = files = new List<string>();
                    files.Add(target.Origin);
                }

            foreach (YamlSpecResult spec in specs)
            {
                var clashes = new List<DiagnosticInfo>();
                foreach (TypeTarget target in Targets(spec))
                {
                    List<string> files = bySpec[target.FullName];
                    string? other = attributedNames.Contains(target.FullName) ? "an attributed class"
                        : files.Count > 1 ? "spec " + (files.FirstOrDefault(f => f != target.Origin) ?? target.Origin)
                        : null;
                    if (other == null) continue;
                    LocationInfo? at = spec.UNet?.Spec?.Target == target ? spec.ModelNameAt : spec.ScheduleNameAt;
                    clashes.Add(DiagnosticInfo.Create(DiagnosticDescriptors.GeneratedTypeDeclaredTwice, at, target.Origin, target.FullName, other));
                }
                if (clashes.Count == 0)
                {
                    yield return spec;
                    continue;
                }
                yield return spec with
                {
                    UNet = spec.UNet == null ? null : spec.UNet with { Spec = null },
                    Schedule = spec.Schedule == null ? null : spec.Schedule with { Spec = null },
                    Catalog = null,
                    Diagnostics = spec.Diagnostics.Concat(clashes).ToEquatableArray(),
                };
            }
        }

        private static IEnumerable<TypeTarget> Targets(YamlSpecResult spec)
        {
            if (spec.UNet?.Spec is UNetSpec unet) yield return unet.Target;
            if (spec.Schedule?.Spec is ScheduleSpec schedule) yield return schedule.Target;
        }
    }
}
