// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). Names: C# identifiers, and suggestions for misspelt keys and values.
using System;
using System.Collections.Generic;
using System.Linq;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    // Names and suggestions.
    static partial class SpecYaml
    {
        /// <summary>The closest of <paramref name="candidates"/> to a misspelt word, or null when none is close.</summary>
        public static string? Suggest(string written, IEnumerable<string> candidates)
        {
            string? best = null;
            int bestDistance = int.MaxValue;
            string normalised = written.ToLowerInvariant().Replace('-', '_');
            foreach (string candidate in candidates)
            {
                // An abbreviation ("sched", "attn": the candidate's letters in order) counts as close.
                int distance = IsAbbreviation(normalised, candidate) ? 1 : EditDistance(normalised, candidate);
                if (distance < bestDistance)
                {
                    best = candidate;
                    bestDistance = distance;
                }
            }
            return bestDistance <= Math.Max(2, written.Length / 3) ? best : null;
        }

        private static bool IsAbbreviation(string written, string candidate)
        {
            if (written.Length < 3 || written.Length >= candidate.Length || written[0] != candidate[0]) return false;
            int next = 0;
            foreach (char c in candidate)
                if (next < written.Length && written[next] == c) next++;
            return next == written.Length;
        }

        /// <summary>Levenshtein distance: insertions, deletions and substitutions.</summary>
        public static int EditDistance(string a, string b)
        {
            var previous = new int[b.Length + 1];
            var current = new int[b.Length + 1];
            for (int j = 0; j <= b.Length; j++) previous[j] = j;
            for (int i = 1; i <= a.Length; i++)
            {
                current[0] = i;
                for (int j = 1; j <= b.Length; j++)
                {
                    int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                    current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
                }
                int[] swap = previous;
                previous = current;
                current = swap;
            }
            return previous[b.Length];
        }

        /// <summary>A C# identifier as far as characters go (the generator also rejects keywords).</summary>
        public static bool IsIdentifier(string name) =>
            name.Length > 0 && (char.IsLetter(name[0]) || name[0] == '_') && name.All(c => char.IsLetterOrDigit(c) || c == '_');
    }
}
