using System;
using System.Collections.Generic;
using Ddpm.Generators.Model;

namespace Ddpm.Generators
{
    /// <summary>
    /// How one front end names and locates the settings of a declaration, so the shared validator
    /// can speak the user's language ("ResnetBlockGroups" in C#, "resnet_block_groups" in YAML)
    /// and point at the argument or value that is wrong.
    /// Keys are the YAML paths: "channels", "dim_mults", "stages[1].index", "attention.heads", ...
    /// </summary>
    internal sealed class SpecSource
    {
        private readonly Dictionary<string, LocationInfo> locations = new Dictionary<string, LocationInfo>(StringComparer.Ordinal);
        private readonly Func<string, string> display;

        public SpecSource(LocationInfo? declaration, Func<string, string> display)
        {
            Declaration = declaration;
            this.display = display;
        }

        /// <summary>Where the whole declaration is (the class name or the YAML section).</summary>
        public LocationInfo? Declaration { get; }

        public void Add(string key, LocationInfo? location)
        {
            if (location != null) locations[key] = location;
        }

        /// <summary>The location of a setting; falls back to its parent path, then to the declaration.</summary>
        public LocationInfo? Locate(string key)
        {
            while (true)
            {
                if (locations.TryGetValue(key, out LocationInfo? found)) return found;
                int cut = Math.Max(key.LastIndexOf('.'), key.LastIndexOf('['));
                if (cut <= 0) return Declaration;
                key = key.Substring(0, cut);
            }
        }

        public string Name(string key) => display(key);
    }
}
