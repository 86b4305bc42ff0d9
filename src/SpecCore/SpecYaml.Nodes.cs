// Spec core: compiled into Ddpm.Runtime (public) and into the generator (internal). The reading machinery: sections with type checks, error locations, text positions.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    // The reading machinery.
    static partial class SpecYaml
    {
        /// <summary>Collects errors and locations while the sections are read.</summary>
        private sealed class Reader
        {
            private readonly TextMap map;

            public Reader(SpecDocument document, TextMap map)
            {
                Document = document;
                this.map = map;
            }

            public SpecDocument Document { get; }

            public SpecSpan Span(YamlNode node) => map.Span(node);

            public void Error(SpecErrorKind kind, string path, SpecSpan span, params string[] arguments) =>
                Document.Errors.Add(new SpecError(kind, path, span, arguments));

            /// <summary>Opens a mapping as a section: checks its keys against the table and the required ones.</summary>
            public Section Open(YamlMappingNode node, string path, YamlNode? key, string? table = null)
            {
                IReadOnlyList<SpecKey> keys = Sections[table ?? path];
                var entries = new Dictionary<string, KeyValuePair<YamlNode, YamlNode>>(StringComparer.Ordinal);
                var suggested = new HashSet<string>(StringComparer.Ordinal);
                string where = path.Length == 0 ? "the spec" : "'" + path + "'";
                foreach (KeyValuePair<YamlNode, YamlNode> pair in node.Children)
                {
                    string? name = (pair.Key as YamlScalarNode)?.Value;
                    if (name == null)
                    {
                        Error(SpecErrorKind.WrongType, path, Span(pair.Key), path.Length == 0 ? "(key)" : path + " (key)", "a plain key name", Shown(pair.Key));
                        continue;
                    }
                    if (!keys.Any(k => k.Name == name))
                    {
                        string? suggestion = Suggest(name, keys.Select(k => k.Name));
                        if (suggestion != null) suggested.Add(suggestion);
                        Error(SpecErrorKind.UnknownKey, Join(path, name), Span(pair.Key), name, where,
                              suggestion == null ? "" : $" (did you mean '{suggestion}'?)", string.Join(", ", keys.Select(k => k.Name)));
                        continue;
                    }
                    entries[name] = pair;
                    Document.Keys[Join(path, name)] = Span(pair.Key);
                    Document.Values[Join(path, name)] = Span(pair.Value);
                }
                SpecSpan at = key != null ? Span(key) : Span(node);
                // A misspelt required key is reported once, as the unknown key with its suggestion.
                foreach (SpecKey required in keys.Where(k => k.Required && !entries.ContainsKey(k.Name) && !suggested.Contains(k.Name)))
                    Error(SpecErrorKind.MissingKey, Join(path, required.Name), at, path.Length == 0 ? "The spec" : "'" + path + "'", required.Name, required.Description);
                return new Section(this, path, entries);
            }

            public static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;
        }

        /// <summary>The keys of one mapping, read with type checks; a wrong value leaves the default.</summary>
        private sealed class Section
        {
            private readonly Reader reader;
            private readonly Dictionary<string, KeyValuePair<YamlNode, YamlNode>> entries;

            public Section(Reader reader, string path, Dictionary<string, KeyValuePair<YamlNode, YamlNode>> entries)
            {
                this.reader = reader;
                this.entries = entries;
                Path = path;
            }

            public string Path { get; }

            /// <summary>Whether the section writes <paramref name="key"/> (for settings whose default depends on others).</summary>
            public bool Contains(string key) => entries.ContainsKey(key);

            public Section? Mapping(string key)
            {
                if (!entries.TryGetValue(key, out var pair)) return null;
                if (pair.Value is YamlMappingNode mapping) return reader.Open(mapping, Reader.Join(Path, key), pair.Key);
                WrongType(key, pair.Value, "a mapping (key: value lines or { key: value })");
                return null;
            }

            /// <summary>A list of mappings: entry i becomes section "path.key[i]" checked against <paramref name="table"/>.</summary>
            public IEnumerable<Section> MappingList(string key, string table)
            {
                var sections = new List<Section>();
                if (!entries.TryGetValue(key, out var pair)) return sections;
                if (!(pair.Value is YamlSequenceNode list))
                {
                    WrongType(key, pair.Value, "a list of mappings (- { key: value })");
                    return sections;
                }
                int i = 0;
                foreach (YamlNode item in list.Children)
                {
                    string path = $"{Reader.Join(Path, key)}[{i.ToString(CultureInfo.InvariantCulture)}]";
                    reader.Document.Values[path] = reader.Span(item);
                    if (item is YamlMappingNode mapping) sections.Add(reader.Open(mapping, path, null, table));
                    else
                    {
                        reader.Error(SpecErrorKind.WrongType, path, reader.Span(item), path, "a mapping ({ key: value })", Shown(item));
                        sections.Add(new Section(reader, path, new Dictionary<string, KeyValuePair<YamlNode, YamlNode>>()));
                    }
                    i++;
                }
                return sections;
            }

            public int Int(string key, int fallback, int min = int.MinValue)
            {
                YamlScalarNode? scalar = Scalar(key, "an integer");
                if (scalar == null) return fallback;
                if (!IsPlain(scalar) || !int.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
                    return WrongType(key, scalar, "an integer", fallback);
                if (value < min) return OutOfRange(key, scalar, ">= " + min.ToString(CultureInfo.InvariantCulture), fallback);
                return value;
            }

            /// <summary>An integer setting checked against its rule (TrainingRules).</summary>
            public int Int(string key, int fallback, NumberRange range)
            {
                const int invalid = int.MinValue;
                int value = Int(key, invalid);
                if (value == invalid) return fallback;
                return range.Allows(value) ? value : OutOfRange(key, (YamlScalarNode)entries[key].Value, range.Text, fallback);
            }

            public int? NullableInt(string key, int? fallback, NumberRange range)
            {
                if (!entries.TryGetValue(key, out var pair)) return fallback;
                if (pair.Value is YamlScalarNode scalar && IsPlain(scalar) && IsNull(scalar.Value)) return null;
                const int invalid = int.MinValue;
                int value = Int(key, invalid, range);
                return value == invalid ? fallback : value;
            }

            public long Long(string key, long fallback)
            {
                YamlScalarNode? scalar = Scalar(key, "an integer");
                if (scalar == null) return fallback;
                if (!IsPlain(scalar) || !long.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
                    return WrongType(key, scalar, "an integer", fallback);
                return value;
            }

            public double Double(string key, double fallback, NumberRange? range = null)
            {
                YamlScalarNode? scalar = Scalar(key, "a number");
                if (scalar == null) return fallback;
                if (!IsPlain(scalar) || !double.TryParse(scalar.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                    return WrongType(key, scalar, "a number", fallback);
                // "NaN", "Infinity" and "1e400" parse, but no setting takes them (YAML's .nan and .inf do not parse).
                if (double.IsNaN(value) || double.IsInfinity(value))
                    return WrongType(key, scalar, "a finite number", fallback);
                return range == null || range.Allows(value) ? value : OutOfRange(key, scalar, range.Text, fallback);
            }

            public bool Bool(string key, bool fallback)
            {
                YamlScalarNode? scalar = Scalar(key, "true or false");
                if (scalar == null) return fallback;
                if (IsPlain(scalar) && (scalar.Value == "true" || scalar.Value == "True" || scalar.Value == "TRUE")) return true;
                if (IsPlain(scalar) && (scalar.Value == "false" || scalar.Value == "False" || scalar.Value == "FALSE")) return false;
                return WrongType(key, scalar, "true or false", fallback);
            }

            public string String(string key, string fallback)
            {
                YamlScalarNode? scalar = Scalar(key, "a string");
                if (scalar == null) return fallback;
                string value = scalar.Value ?? "";
                if (IsPlain(scalar) && IsNull(value)) return WrongType(key, scalar, "a string", fallback);
                return value;
            }

            /// <summary>A C# identifier, or a dotted namespace name.</summary>
            public string Name(string key, string fallback, bool dotted)
            {
                YamlScalarNode? scalar = Scalar(key, "a name");
                if (scalar == null) return fallback;
                string value = scalar.Value ?? "";
                bool valid = dotted ? value.Split('.').All(IsIdentifier) : IsIdentifier(value);
                if (valid) return value;
                reader.Error(SpecErrorKind.InvalidName, Reader.Join(Path, key), reader.Span(scalar), Reader.Join(Path, key),
                             dotted ? "a namespace (C# identifiers joined by dots)" : "a C# identifier (a letter or '_', then letters, digits or '_')", value);
                return fallback;
            }

            public T Enum<T>(string key, T fallback, string[] names, T[] values)
            {
                YamlScalarNode? scalar = Scalar(key, "one of " + Or(names));
                if (scalar == null) return fallback;
                int index = Array.IndexOf(names, scalar.Value ?? "");
                if (index >= 0) return values[index];
                string? suggestion = Suggest(scalar.Value ?? "", names);
                reader.Error(SpecErrorKind.UnknownValue, Reader.Join(Path, key), reader.Span(scalar), Reader.Join(Path, key), scalar.Value ?? "",
                             suggestion == null ? "" : $" (did you mean '{suggestion}'?)", Or(names));
                return fallback;
            }

            /// <summary>A list of words from <paramref name="names"/> ([tensorboard]); each unknown one is reported at its entry and left out, a repeated one kept once.</summary>
            public string[] EnumList(string key, string[] fallback, string[] names)
            {
                if (!entries.TryGetValue(key, out var pair)) return fallback;
                if (!(pair.Value is YamlSequenceNode list)) return WrongType(key, pair.Value, "a list such as [" + names[0] + "]", fallback);
                var values = new List<string>();
                int i = 0;
                foreach (YamlNode item in list.Children)
                {
                    string path = $"{Reader.Join(Path, key)}[{i.ToString(CultureInfo.InvariantCulture)}]";
                    reader.Document.Values[path] = reader.Span(item);
                    if (!(item is YamlScalarNode scalar)) reader.Error(SpecErrorKind.WrongType, path, reader.Span(item), path, "one of " + Or(names), Shown(item));
                    else if (Array.IndexOf(names, scalar.Value ?? "") < 0)
                    {
                        string? suggestion = Suggest(scalar.Value ?? "", names);
                        reader.Error(SpecErrorKind.UnknownValue, path, reader.Span(scalar), path, scalar.Value ?? "",
                                     suggestion == null ? "" : $" (did you mean '{suggestion}'?)", Or(names));
                    }
                    else if (!values.Contains(scalar.Value!)) values.Add(scalar.Value!);
                    i++;
                }
                return values.ToArray();
            }

            public int[] IntList(string key, int[] fallback)
            {
                if (!entries.TryGetValue(key, out var pair)) return fallback;
                if (!(pair.Value is YamlSequenceNode list)) return WrongType(key, pair.Value, "a list of integers ([1, 2, 4])", fallback);
                var values = new List<int>();
                int i = 0;
                foreach (YamlNode item in list.Children)
                {
                    string path = $"{Reader.Join(Path, key)}[{i.ToString(CultureInfo.InvariantCulture)}]";
                    reader.Document.Values[path] = reader.Span(item);
                    if (item is YamlScalarNode scalar && IsPlain(scalar) && int.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
                        values.Add(value);
                    else
                    {
                        reader.Error(SpecErrorKind.WrongType, path, reader.Span(item), path, "an integer", Shown(item));
                        values.Add(1);
                    }
                    i++;
                }
                return values.ToArray();
            }

            private YamlScalarNode? Scalar(string key, string expected)
            {
                if (!entries.TryGetValue(key, out var pair)) return null;
                if (pair.Value is YamlScalarNode scalar) return scalar;
                WrongType(key, pair.Value, expected);
                return null;
            }

            private T WrongType<T>(string key, YamlNode value, string expected, T fallback)
            {
                WrongType(key, value, expected);
                return fallback;
            }

            private void WrongType(string key, YamlNode value, string expected) =>
                reader.Error(SpecErrorKind.WrongType, Reader.Join(Path, key), reader.Span(value), Reader.Join(Path, key), expected, Shown(value));

            private T OutOfRange<T>(string key, YamlScalarNode value, string range, T fallback)
            {
                reader.Error(SpecErrorKind.OutOfRange, Reader.Join(Path, key), reader.Span(value), Reader.Join(Path, key), range, value.Value ?? "");
                return fallback;
            }

            private static bool IsPlain(YamlScalarNode scalar) => scalar.Style == ScalarStyle.Plain || scalar.Style == ScalarStyle.Any;

            private static bool IsNull(string? value) => value == null || value.Length == 0 || value == "~" || value == "null" || value == "Null" || value == "NULL";

            private static string Or(string[] names) =>
                names.Length == 1 ? names[0] : string.Join(", ", names.Take(names.Length - 1)) + " or " + names[names.Length - 1];
        }

        /// <summary>
        /// Turns character offsets into spans with lines and columns. YamlDotNet marks a mapping or a
        /// list by its first token only, so a collection's span is extended here over its content
        /// (and a flow collection's closing bracket), so diagnostics underline all of `{ blocks: 1 }`.
        /// </summary>
        private sealed class TextMap
        {
            private readonly string text;
            private readonly List<int> lineStarts = new List<int> { 0 };

            public TextMap(string text)
            {
                this.text = text;
                for (int i = 0; i < text.Length; i++)
                {
                    if (text[i] == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                    if (text[i] == '\n' || text[i] == '\r') lineStarts.Add(i + 1);
                }
            }

            public SpecSpan Span(long start, long end)
            {
                int from = Clamp(start), to = Math.Max(from, Clamp(end));
                var (line, column) = Position(from);
                var (endLine, endColumn) = Position(to);
                return new SpecSpan(from, to, line, column, endLine, endColumn);
            }

            public SpecSpan Span(YamlNode node) => Span(node.Start.Index, End(node, new HashSet<YamlNode>(ReferenceComparer.Instance)));

            /// <summary>Where a node's text ends. Aliases can share nodes or make cycles, so each node is visited once.</summary>
            private long End(YamlNode node, HashSet<YamlNode> visited)
            {
                long end = Math.Max(node.Start.Index, node.End.Index);
                if (!visited.Add(node)) return end;
                bool flow;
                switch (node)
                {
                    case YamlMappingNode mapping:
                        foreach (KeyValuePair<YamlNode, YamlNode> pair in mapping.Children)
                            end = Math.Max(end, Math.Max(End(pair.Key, visited), End(pair.Value, visited)));
                        flow = mapping.Style == MappingStyle.Flow;
                        break;
                    case YamlSequenceNode sequence:
                        foreach (YamlNode item in sequence.Children) end = Math.Max(end, End(item, visited));
                        flow = sequence.Style == SequenceStyle.Flow;
                        break;
                    default:
                        return end;
                }
                if (!flow) return end;
                char close = node is YamlMappingNode ? '}' : ']';
                long i = Math.Max(end, node.Start.Index + 1); // past the opening bracket of an empty collection
                while (i < text.Length && (text[(int)i] == ' ' || text[(int)i] == ',' || text[(int)i] == '\t' || text[(int)i] == '\n' || text[(int)i] == '\r')) i++;
                return i < text.Length && text[(int)i] == close ? i + 1 : end;
            }

            private (int Line, int Column) Position(int offset)
            {
                int line = lineStarts.BinarySearch(offset);
                if (line < 0) line = ~line - 1;
                return (line + 1, offset - lineStarts[line] + 1);
            }

            private int Clamp(long value) => (int)Math.Max(0, Math.Min(text.Length, value));
        }

        /// <summary>Nodes by identity (YamlNode's own equality compares content, which recurses).</summary>
        private sealed class ReferenceComparer : IEqualityComparer<YamlNode>
        {
            public static readonly ReferenceComparer Instance = new ReferenceComparer();
            public bool Equals(YamlNode? x, YamlNode? y) => ReferenceEquals(x, y);
            public int GetHashCode(YamlNode node) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(node);
        }

        /// <summary>What was written where a value belongs, for "got ..." in messages.</summary>
        private static string Shown(YamlNode node)
        {
            switch (node)
            {
                case YamlMappingNode _: return "a mapping";
                case YamlSequenceNode _: return "a list";
                case YamlScalarNode scalar when scalar.Value == null || scalar.Value.Length == 0: return "nothing";
                case YamlScalarNode scalar:
                    string value = scalar.Value!.Length > 40 ? scalar.Value.Substring(0, 40) + "..." : scalar.Value;
                    return (scalar.Style == ScalarStyle.Plain ? "" : "the quoted string ") + "'" + value + "'";
                default: return "an alias";
            }
        }
    }
}
