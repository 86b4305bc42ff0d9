using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Evaluation;

/// <summary>
/// The small classifier whose penultimate layer is the feature space of <c>ddpm eval</c> (Inception weights cannot
/// be fetched here, so each data set trains its own; see <see cref="FeatureNetTrainer"/>). Input [N, C, S, S] in
/// [-1, 1], any S &gt;= 4:
/// <code>
/// conv3x3(C-&gt;32)-BN-ReLU, maxpool 2          S   -&gt; S/2
/// conv3x3(32-&gt;64)-BN-ReLU, conv3x3(64-&gt;64)-BN-ReLU, maxpool 2   -&gt; S/4
/// conv3x3(64-&gt;128)-BN-ReLU, conv3x3(128-&gt;128)-BN-ReLU
/// global average pool                        -&gt; 128 features   (<see cref="Features"/>)
/// Linear(128 -&gt; classes)                     -&gt; logits         (<see cref="forward"/>)
/// </code>
/// About 22 M multiply-adds per 28x28 image; BatchNorm makes Adam converge in a few epochs.
/// </summary>
public sealed class FeatureNet : nn.Module<Tensor, Tensor>
{
    // libtorch's oneDNN convolutions can return NaN unless configured first (Native/NativeSetup.cs); before the base constructor.
    private static string Prepared(string name) { global::Ddpm.Native.NativeSetup.EnsureConfigured(); return name; }

    /// <summary>Length of the feature vector: the width of the last convolution, pooled.</summary>
    public const int FeatureDimension = 128;

    /// <summary>Bumped whenever the layers change, so cached nets of another architecture are retrained.</summary>
    public const int ArchitectureVersion = 1;

    private readonly Sequential body;
    private readonly Linear classifier;

    /// <summary>Creates an untrained net with TorchSharp's default initialisation.</summary>
    /// <param name="channels">Image channels (&gt;= 1).</param>
    /// <param name="classes">Number of classes (&gt;= 2).</param>
    public FeatureNet(int channels, int classes) : base(Prepared(nameof(FeatureNet)))
    {
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be >= 1.");
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "A classifier needs at least 2 classes.");
        Channels = channels;
        Classes = classes;
        body = nn.Sequential(
            ConvBnRelu("block1", channels, 32)
                .Append(("pool1", nn.MaxPool2d(2)))
                .Concat(ConvBnRelu("block2a", 32, 64))
                .Concat(ConvBnRelu("block2b", 64, 64))
                .Append(("pool2", nn.MaxPool2d(2)))
                .Concat(ConvBnRelu("block3a", 64, 128))
                .Concat(ConvBnRelu("block3b", 128, FeatureDimension))
                .ToArray());
        classifier = nn.Linear(FeatureDimension, classes);
        RegisterComponents();
    }

    /// <summary>Image channels the net reads.</summary>
    public int Channels { get; }
    /// <summary>Number of classes it predicts: the width of the logits.</summary>
    public int Classes { get; }

    /// <summary>Class logits [N, classes].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return classifier.forward(Features(x)).MoveToOuterDisposeScope();
    }

    /// <summary>The penultimate layer: [N, 128], the globally average-pooled output of the last convolution block.</summary>
    public Tensor Features(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != Channels || x.shape[2] < 4 || x.shape[3] < 4)
            throw new ArgumentException($"Expected images [N, {Channels}, S, S] with S >= 4, got [{string.Join(", ", x.shape)}].", nameof(x));
        using var scope = NewDisposeScope();
        return body.forward(x).mean([2, 3]).MoveToOuterDisposeScope();
    }

    /// <summary>The last layer alone: class logits [N, classes] from <see cref="Features"/>.</summary>
    public Tensor Classify(Tensor features) => classifier.forward(features);

    private static IEnumerable<(string, nn.Module<Tensor, Tensor>)> ConvBnRelu(string name, long input, long output) =>
    [
        ($"{name}_conv", nn.Conv2d(input, output, 3, padding: 1, bias: false)),
        ($"{name}_bn", nn.BatchNorm2d(output)),
        ($"{name}_relu", nn.ReLU()),
    ];
}
