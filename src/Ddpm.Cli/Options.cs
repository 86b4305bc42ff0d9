using Ddpm.IO;
using System.CommandLine;
using System.Globalization;
using Ddpm.Training;
using static TorchSharp.torch;

namespace Ddpm.Cli;

/// <summary>Options several commands share.</summary>
internal static class Options
{
    public static Option<string?> Device() =>
        OneOf("--device", "cpu or cuda (default: cuda when available, else cpu).", "cpu", "cuda");

    public static Option<string?> Precision() =>
        OneOf("--precision", "fp32, bf16 (bfloat16 compute with float32 weights; faster than fp32 on GPUs and on CPUs where oneDNN's bf16 kernels pass the kernel check (AMX, AVX-512-BF16); measure with ddpm bench), " +
              "or fp16 (float16 compute with dynamic loss scaling; CUDA only).", "fp32", "bf16", "fp16");

    /// <summary>`--weights auto|ema|raw`: auto takes the weights the run's evaluation scored better (EMA when not evaluated).
    /// Null when not given, which means auto (a default value would show in the help as the enum's internal name).</summary>
    public static Option<Ddpm.Training.SamplingWeights?> Weights() => new("--weights")
    {
        HelpName = "auto|ema|raw",
        Description = "auto (the default: the weights the run's evaluation scored better; EMA if it was not evaluated), ema, or raw.",
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            switch (value)
            {
                case "auto": return Ddpm.Training.SamplingWeights.Unknown;
                case "ema": return Ddpm.Training.SamplingWeights.Ema;
                case "raw": return Ddpm.Training.SamplingWeights.Raw;
                default:
                    result.AddError($"--weights must be auto, ema or raw, got '{Echo(value)}'.");
                    return Ddpm.Training.SamplingWeights.Unknown;
            }
        },
    };

    /// <summary>`--class NAME|INDEX|all|none`: what a class-conditional model draws.</summary>
    public static Option<string?> Class() => new("--class")
    {
        HelpName = "name|index|all|none",
        Description = "For a class-conditional model: the class to draw, by name (sneaker; a unique prefix will do) or index; " +
                      "all (every class: one grid row per class, or a balanced draw for eval); none (the null class: unconditional).",
    };

    /// <summary>`--guidance S`: the classifier-free guidance scale, checked by the spec's rule (ClassRules.Guidance); null means the model's declared one.</summary>
    public static Option<double?> Guidance()
    {
        var option = new Option<double?>("--guidance")
        {
            Description = "For a class-conditional model: the classifier-free guidance scale, 0 to 100 (default: the model's declared one; " +
                          "1 = no guidance, 3 is typical; each step then costs one model call on a doubled batch).",
        };
        FiniteBetween(option, 0, 100);
        return option;
    }

    /// <summary>
    /// The class condition --class and --guidance ask for (null for an unconditional model), checked against the model: a
    /// conditional model needs --class, an unconditional one takes neither. <paramref name="balanced"/>: 'all' spreads
    /// <paramref name="count"/> images evenly over the classes instead of one run per class.
    /// </summary>
    public static Ddpm.Conditioning.ClassCondition? ResolveClass(DiffusionModel model, string? which, double? guidance, int count, bool balanced = false) =>
        ResolveClass(model.Name, model.Conditioning is null ? null : model.ClassNames, which, guidance, word =>
        {
            if (!balanced || !word.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return model.Classes(word, count, guidance);
            var even = Ddpm.Conditioning.ClassCondition.Balanced(model.Conditioning!.Classes, count, guidance ?? model.Conditioning.Guidance);
            even.Check(model.Conditioning, count);
            return even;
        });

    /// <summary>The same for a model exported to ONNX (ddpm sample model.onnx).</summary>
    public static Ddpm.Onnx.OnnxClassCondition? ResolveClass(Ddpm.Onnx.OnnxDiffusionModel model, string? which, double? guidance, int count) =>
        ResolveClass(model.Name, model.IsConditional ? model.ClassNames : null, which, guidance, word => model.ChooseClasses(word, count, guidance));

    /// <summary>The rule of --class and --guidance; <paramref name="classNames"/> is null for an unconditional model.</summary>
    private static T? ResolveClass<T>(string name, IReadOnlyList<string>? classNames, string? which, double? guidance, Func<string, T> choose) where T : class
    {
        if (classNames is null)
        {
            if (which is not null || guidance is not null)
                throw new UsageException($"{name} is not class-conditional: --class and --guidance do not apply to it.");
            return null;
        }
        if (which is null)
            throw new UsageException($"{name} is class-conditional: pass --class with a class name or index " +
                                     $"({string.Join(", ", classNames.Select((n, i) => $"{i} {n}"))}), --class all for every class, " +
                                     "or --class none for the unconditional model.");
        try
        {
            return choose(which);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--class {which}: {DdpmCli.Describe(e)}");
        }
    }

    /// <summary>"class sneaker, guidance 3" / "10 classes, guidance 3" / "the null class (unconditional)", for messages.</summary>
    public static string DescribeClass(Ddpm.Conditioning.ClassCondition condition, IReadOnlyList<string> names) =>
        DescribeClass(condition.Labels, condition.Guidance, names);

    /// <summary>
    /// What a draw with <paramref name="labels"/> at <paramref name="guidance"/> was, and for a grid of one row per class which
    /// row is which (the PNG itself holds only the images).
    /// </summary>
    public static string DescribeClass(IReadOnlyList<int> labels, double guidance, IReadOnlyList<string> names)
    {
        var distinct = labels.Distinct().ToArray();
        string scale = $"guidance {guidance.ToString(CultureInfo.InvariantCulture)}";
        if (distinct.Length == 1)
            return distinct[0] >= names.Count ? "the null class (unconditional)" : $"class {names[distinct[0]]}, {scale}";
        string text = $"{distinct.Length} classes, {scale}";
        // Runs of one class each (--class all) make one grid row per class; a balanced draw (eval) has no rows to name.
        return Ddpm.Imaging.GridLayout.ClassRowLength(labels) > 0 ? $"{text}; rows: {string.Join(", ", distinct.Select(l => l < names.Count ? names[l] : "null class"))}" : text;
    }

    /// <summary>`--steps N`: model calls of the samplers that take a number of them; null when not given (<see cref="StepsFor"/>).</summary>
    public static Option<int?> SamplerSteps() => new("--steps")
    {
        Description = $"Model calls of dpmpp-2m-sde, dpmpp-2m and ddim (default {SpecDefaults.SamplerSteps}, or T when the schedule has fewer " +
                      "timesteps; ddpm always runs all T).",
    };

    /// <summary>The model calls to run: <paramref name="given"/>, else the default for a schedule of <paramref name="timesteps"/> steps.</summary>
    public static int StepsFor(int? given, int timesteps) => given ?? SpecDefaults.SamplerStepsFor(timesteps);

    /// <summary>The name of the default sampler as the CLI spells it (dpmpp-2m-sde).</summary>
    public static string DefaultSamplerName => Ddpm.Specs.SpecYaml.SamplerValues[(int)SpecDefaults.Sampler];

    /// <summary>
    /// `--sampler`; null when not given, which means the project's one default sampler (<see cref="SpecDefaults.Sampler"/>; a default
    /// value would show in the help as the enum's internal name).
    /// </summary>
    public static Option<SamplerKind?> Sampler() => new("--sampler")
    {
        HelpName = string.Join('|', Ddpm.Specs.SpecYaml.SamplerValues),
        Description = $"{DefaultSamplerName} (the default: SDE-DPM-Solver++(2M), fresh noise at every step like ddpm, {SpecDefaults.SamplerSteps} model calls; " +
                      "it matched ddpm's 300 steps by FID on the one-epoch tutorial model, docs/quality.md), ddpm (the tutorial's ancestral chain, all T steps), " +
                      "dpmpp-2m (DPM-Solver++(2M), deterministic), or ddim.",
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            int index = Array.IndexOf(Ddpm.Specs.SpecYaml.SamplerValues, value);
            if (index < 0) result.AddError($"--sampler must be {string.Join(", ", Ddpm.Specs.SpecYaml.SamplerValues)}, got '{Echo(value)}'.");
            return index < 0 ? SpecDefaults.Sampler : (SamplerKind)index;
        },
    };

    /// <summary>--engine auto|torch|onnx: what runs the network while sampling on the CPU (SamplingEngine).</summary>
    public static Option<string?> Engine()
    {
        var engine = new Option<string?>("--engine")
        {
            HelpName = "auto|torch|onnx",
            Description = "What runs the network on the CPU: torch (TorchSharp), onnx (ONNX Runtime, on the checkpoint exported once into the cache), " +
                          "or auto (the faster of the two for this model, measured once on this machine). The same seed draws the same images on both.",
        };
        engine.AcceptOnlyFromAmong(SamplingEngine.Auto, SamplingEngine.Torch, SamplingEngine.Onnx);
        return engine;
    }

    /// <summary>
    /// `--x0-limit declared|none|clip|Q`: how sampling limits the predicted x_0, overriding the schedule's declared
    /// clip_x0 / dynamic_threshold, so clipping and thresholding can be compared on one checkpoint without recompiling.
    /// </summary>
    public static Option<string?> X0Limit() => new("--x0-limit")
    {
        HelpName = "declared|none|clip|Q",
        Description = "How sampling limits the predicted x_0: declared (the schedule's clip_x0 / dynamic_threshold), none, clip (to [-1, 1]), " +
                      "or a quantile Q in (0, 1) for dynamic thresholding (Saharia et al. 2022), e.g. 0.995.",
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            if (value is not ("declared" or "none" or "clip") &&
                !(double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double q) && q > 0 && q < 1))
                result.AddError($"--x0-limit must be declared, none, clip or a quantile between 0 and 1 (exclusive), got '{Echo(value)}'.");
            return value;
        },
    };

    /// <summary>The schedule's diffusion with the x_0 limit of <see cref="X0Limit"/> applied (unchanged for null or "declared").</summary>
    public static Ddpm.Diffusion.GaussianDiffusion WithX0Limit(Ddpm.Diffusion.GaussianDiffusion diffusion, string? limit) => limit switch
    {
        null or "declared" => diffusion,
        "none" => new(diffusion.Tables, diffusion.Options with { ClipX0 = false, DynamicThreshold = 0 }),
        "clip" => new(diffusion.Tables, diffusion.Options with { ClipX0 = true, DynamicThreshold = 0 }),
        _ => new(diffusion.Tables, diffusion.Options with { ClipX0 = false, DynamicThreshold = double.Parse(limit, CultureInfo.InvariantCulture) }),
    };

    /// <summary>A checkpoint opened for sampling with the requested weights (shared by ddpm sample and ddpm eval).</summary>
    public static DiffusionModel OpenCheckpoint(string path, SamplingWeights weights)
    {
        RequireFile(path, "a checkpoint");
        return DiffusionModel.Load(path, weights);
    }

    /// <summary>
    /// The one rule for a file a command reads: a folder there is named as a folder ("'x.yaml' is a folder, not a spec
    /// file."), a missing path as missing ("Spec file 'x.yaml' does not exist.").
    /// </summary>
    /// <param name="path">The file the command reads.</param>
    /// <param name="kind">What it should be, with its article: "a spec file", "an ONNX model".</param>
    /// <param name="option">The option that named it, as the messages' prefix ("--compare: 'x' does not exist."); null for an argument.</param>
    public static void RequireFile(string path, string kind, string? option = null)
    {
        string lead = option is null ? "" : option + ": ";
        if (Directory.Exists(path)) throw new UsageException($"{lead}'{path}' is a folder, not {kind}.");
        if (File.Exists(path)) return;
        string noun = kind[(kind.IndexOf(' ') + 1)..];
        throw new UsageException(option is null ? $"{char.ToUpperInvariant(noun[0])}{noun[1..]} '{path}' does not exist." : $"{lead}'{path}' does not exist.");
    }

    /// <summary>"EMA" or "raw", as the command's messages and the eval JSON spell them.</summary>
    public static string WeightsName(SamplingWeights weights) => weights == SamplingWeights.Ema ? "EMA" : "raw";

    /// <summary>How a diffusion's x_0 limit is described in messages and JSON: "none", "clip" or "dynamic 0.995".</summary>
    public static string DescribeX0Limit(Ddpm.Diffusion.DiffusionOptions options) =>
        options.DynamicThreshold > 0 ? "dynamic " + options.DynamicThreshold.ToString(CultureInfo.InvariantCulture)
        : options.ClipX0 ? "clip" : "none";

    /// <summary>How a sampler run is described in messages: "DDPM, 300 steps", "DPM-Solver++(2M), 20 steps".</summary>
    public static string DescribeSampler(SamplerKind kind, int steps, int timesteps, double eta) => kind switch
    {
        SamplerKind.Ddim => $"DDIM, {steps} steps, eta {eta.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        SamplerKind.DpmSolver2M => $"DPM-Solver++(2M), {steps} steps",
        SamplerKind.DpmSolver2MSde => $"SDE-DPM-Solver++(2M), {steps} steps",
        _ => $"DDPM, {timesteps} steps",
    };

    /// <summary>A case-insensitive option whose value must be one of <paramref name="allowed"/> (given in lower case).</summary>
    private static Option<string?> OneOf(string name, string description, params string[] allowed) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            string value = result.Tokens.Single().Value.ToLowerInvariant();
            if (!allowed.Contains(value)) result.AddError($"{name} must be {string.Join(" or ", allowed)}, got '{Echo(value)}'.");
            return value;
        },
    };

    /// <summary>
    /// Makes an integer option parse its value itself: a non-integer or a value below <paramref name="minimum"/> is one
    /// usage error naming the option, never an exception (a validator that reads an unparsable value throws).
    /// </summary>
    public static void AtLeast<T>(Option<T> option, int minimum) => Between(option, minimum, int.MaxValue);

    /// <summary>As <see cref="AtLeast{T}"/>, and values above <paramref name="maximum"/> are refused too.</summary>
    public static void Between<T>(Option<T> option, int minimum, int maximum)
    {
        string name = option.Name;
        string range = maximum == int.MaxValue ? $">= {minimum} (at most {int.MaxValue})" : $"from {minimum} to {maximum}";
        option.CustomParser = result =>
        {
            string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
            {
                result.AddError($"{name} must be a whole number {range}, got '{Echo(text)}'.");
                return default!;
            }
            if (value < minimum || value > maximum) result.AddError($"{name} must be {(maximum == int.MaxValue ? $">= {minimum}" : range)}, got {value}.");
            return (T)(object)value;
        };
    }

    /// <summary>Makes a 64-bit integer option (a seed) parse its value itself: anything but a whole number is one usage error.</summary>
    public static void WholeNumber<T>(Option<T> option)
    {
        string name = option.Name;
        option.CustomParser = result =>
        {
            string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
            {
                result.AddError($"{name} must be a whole number from {long.MinValue} to {long.MaxValue}, got '{Echo(text)}'.");
                return default!;
            }
            return (T)(object)value;
        };
    }

    /// <summary>As <see cref="AtLeast{T}"/> for floating-point options: NaN, infinities and values below <paramref name="minimum"/> are refused.</summary>
    public static void FiniteAtLeast<T>(Option<T> option, double minimum) => FiniteBetween(option, minimum, double.MaxValue);

    /// <summary>As <see cref="FiniteAtLeast{T}"/>, and values above <paramref name="maximum"/> are refused too.</summary>
    public static void FiniteBetween<T>(Option<T> option, double minimum, double maximum)
    {
        string name = option.Name;
        static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
        string range = maximum == double.MaxValue ? $">= {F(minimum)}" : $"from {F(minimum)} to {F(maximum)}";
        option.CustomParser = result =>
        {
            string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
            {
                result.AddError($"{name} must be a finite number {range}, got '{Echo(text)}'.");
                return default!;
            }
            if (value < minimum || value > maximum) result.AddError($"{name} must be {range}, got {Echo(text)}.");
            return (T)(object)value;
        };
    }

    /// <summary>A value as echoed in a message: at most 40 characters, so a pasted megabyte does not fill the terminal.</summary>
    public static string Echo(string value) => value.Length <= 40 ? value : value[..40] + "...";

    /// <summary>
    /// The one rule for every file a command writes, checked before any work: the file is not one of the command's
    /// <paramref name="inputs"/> (compared as full paths after every symbolic link is followed, so a link or a "./x/../x"
    /// spelling of an input is caught too), an existing Ddpm checkpoint is replaced only by a checkpoint
    /// (<paramref name="writesCheckpoint"/>), whatever the flags, and the file can be written: not a folder, its folder
    /// creatable, the file openable for writing. A file that did not exist is not left behind.
    /// </summary>
    /// <param name="path">The file the command will write.</param>
    /// <param name="option">The option that named it (or chose it by default), for the message.</param>
    /// <param name="inputs">The files and folders the command reads; none of them may be written.</param>
    /// <param name="writesCheckpoint">True when what the command writes there is a Ddpm checkpoint.</param>
    public static void CheckWritableFile(string path, string option, IEnumerable<string?>? inputs = null, bool writesCheckpoint = false)
    {
        if (Directory.Exists(path)) throw new UsageException($"{option} {Echo(path)} is a folder; give a file name.");
        string target = FilePaths.RealPath(path);
        foreach (string? input in inputs ?? [])
        {
            if (string.IsNullOrEmpty(input)) continue;
            if (string.Equals(target, FilePaths.RealPath(input), PathComparison))
                throw new UsageException($"{option} {path} is the input {input}: writing it would destroy what the command reads; choose another file.");
        }
        if (!writesCheckpoint && Ddpm.Training.Checkpoint.IsCheckpoint(target))
            throw new UsageException($"{option} {path} is a Ddpm checkpoint, and this command would replace it with another kind of file; choose another file.");
        // Files there open for writing (as root) and fail only when written, after the work: refused by where they are.
        if (KernelFileSystem(target) is string kernel)
            throw new UsageException($"{option} {Echo(path)}: cannot write there (it is in the kernel's {kernel} file system, not on a disk).");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            bool existed = File.Exists(path);
            using (new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write)) { }
            if (!existed) File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"{option} {Echo(path)}: cannot write there ({e.Message.TrimEnd('.')}).");
        }
    }

    /// <summary>File systems of the Linux kernel's interfaces (as DriveInfo names them): what is written there is no file.</summary>
    private static readonly string[] KernelFileSystems = ["proc", "sysfs", "cgroupfs", "cgroup2fs", "debugfs", "tracefs", "securityfs", "configfs", "efivarfs", "bpf_fs"];

    /// <summary>The kernel file system that holds <paramref name="path"/> (or its nearest existing folder); null for anything else.</summary>
    private static string? KernelFileSystem(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            string? existing = Path.GetFullPath(path);
            while (existing is not null && !Path.Exists(existing)) existing = Path.GetDirectoryName(existing);
            if (existing is null) return null;
            string format = new DriveInfo(existing).DriveFormat;
            return KernelFileSystems.Contains(format, StringComparer.Ordinal) ? format : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return null; }
    }

    /// <summary>How paths compare: by case where the file system usually is case-sensitive (Linux), else ignoring case.</summary>
    private static StringComparison PathComparison => OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    /// <summary>The device `--device` names ("cpu" or "cuda"; default cuda when usable): one usage line when CUDA is not.</summary>
    public static string ResolveDevice(string? requested)
    {
        bool usable = cuda.is_available();
        if (requested == "cuda" && !usable)
            throw new UsageException(CudaUnavailable(HasCudaLibTorch(AppContext.BaseDirectory)));
        return requested ?? (usable ? "cuda" : "cpu");
    }

    /// <summary>Why --device cuda cannot run: a CPU-only build (say how to get a CUDA one), or a CUDA build without a usable GPU.</summary>
    public static string CudaUnavailable(bool cudaLibTorch) => cudaLibTorch
        ? "--device cuda: this ddpm has the CUDA libtorch, but no CUDA device is usable; check the GPU and its NVIDIA driver (nvidia-smi)."
        : "--device cuda: this ddpm is built with the CPU-only libtorch (TorchSharp-cpu); build it with CUDA: " +
          "dotnet build -p:DdpmTorchPackage=TorchSharp-cuda-linux -p:DdpmTorchVersion=" + TorchVersion + " (README, 'GPU').";

    /// <summary>The TorchSharp version this ddpm was built with, for the CUDA build line (its CUDA package must match it).</summary>
    private static string TorchVersion =>
        typeof(TorchSharp.torch).Assembly.GetName().Version is { } v ? $"{v.Major}.{v.Minor}.{v.Build}" : "<version>";

    /// <summary>Whether a CUDA libtorch (libtorch_cuda.so or torch_cuda.dll) was deployed beside the program.</summary>
    public static bool HasCudaLibTorch(string folder) =>
        Directory.Exists(folder) &&
        Directory.EnumerateFiles(folder, "*torch_cuda*", SearchOption.AllDirectories).Any();

    /// <summary>`--precision fp16` is float16 with loss scaling, made for GPUs: refused on the CPU with one line.</summary>
    public static void CheckPrecisionOnDevice(string precision, string device)
    {
        if (string.Equals(precision, "fp16", StringComparison.OrdinalIgnoreCase) && device == "cpu")
            throw new UsageException("--precision fp16 needs --device cuda (float16 with loss scaling is for GPUs); on the CPU use bf16 or fp32.");
    }
}
