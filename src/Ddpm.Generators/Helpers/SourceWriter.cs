using System;
using System.Text;

namespace Ddpm.Generators.Helpers
{
    /// <summary>A StringBuilder with an indentation level; emitted text uses "\n" line ends on every host.</summary>
    internal sealed class SourceWriter
    {
        private readonly StringBuilder text = new StringBuilder();
        private int indent;

        public SourceWriter Line(string line = "")
        {
            if (line.Length > 0) text.Append(' ', indent * 4).Append(line);
            text.Append('\n');
            return this;
        }

        public SourceWriter Open(string line)
        {
            Line(line);
            Line("{");
            indent++;
            return this;
        }

        public SourceWriter Close(string suffix = "")
        {
            indent--;
            return Line("}" + suffix);
        }

        public override string ToString()
        {
            if (indent != 0) throw new InvalidOperationException($"Unbalanced indentation ({indent}) in generated source.");
            return text.ToString();
        }
    }
}
