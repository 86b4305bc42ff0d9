using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Ddpm.Generators.Model
{
    /// <summary>
    /// A source location as plain values (no SyntaxTree), so diagnostics can travel through the
    /// cached pipeline; YAML files have no syntax tree at all and use the same shape.
    /// </summary>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        public static LocationInfo? From(Location? location) =>
            location?.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);

        public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());
    }
}
