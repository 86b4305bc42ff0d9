using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace Ddpm.Interop;

/// <summary>
/// Appends ONNX nodes and initializers to a graph (OnnxSharp's protobuf messages), naming every value after the module
/// that makes it, so a viewer (Netron) shows the state-dict paths. Only the standard ("ai.onnx") domain is used.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private int nodes;

    public GraphProto Graph { get; } = new();

    /// <summary>A float32 initializer holding <paramref name="value"/> (any dtype, copied to float32 on the CPU).</summary>
    public string Weight(string name, Tensor value)
    {
        using var scope = NewDisposeScope();
        var data = value.detach().cpu().to(ScalarType.Float32).contiguous();
        var proto = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(data.shape);
        // raw_data is little-endian, as .NET's float layout is on every platform Ddpm runs on.
        proto.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.data<float>().ToArray().AsSpan()));
        Graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>A float32 initializer from managed values.</summary>
    public string Floats(string name, float[] values, params long[] dims)
    {
        var proto = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(dims);
        proto.FloatData.AddRange(values);
        Graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>An int64 initializer (shapes, axes).</summary>
    public string Int64s(string name, params long[] values)
    {
        var proto = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Dims.Add(values.Length);
        proto.Int64Data.AddRange(values);
        Graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>A float32 scalar initializer.</summary>
    public string Scalar(string name, float value)
    {
        var proto = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Float };
        proto.FloatData.Add(value);
        Graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>Adds a node of <paramref name="op"/> and returns its (single) output, named <paramref name="output"/>.</summary>
    public string Node(string op, string output, string[] inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = $"{op}_{nodes++}" };
        node.Input.AddRange(inputs);
        string name = Unique(output);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return name;
    }

    /// <summary>Renames the value <paramref name="from"/> to the graph output <paramref name="to"/> (an Identity node).</summary>
    public string Output(string from, string to) => Node("Identity", to, new[] { from });

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    public static AttributeProto Text(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>A float32 tensor value description with named (dynamic) or fixed dimensions.</summary>
    public static ValueInfoProto Value(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (object dim in dims)
            shape.Dim.Add(dim is string symbol
                ? new TensorShapeProto.Types.Dimension { DimParam = symbol }
                : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(dim) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private string Unique(string name)
    {
        string candidate = name;
        for (int i = 1; !names.Add(candidate); i++) candidate = $"{name}_{i}";
        return candidate;
    }
}
