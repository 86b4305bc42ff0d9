using System.Security.Cryptography;
using System.Text;
using Ddpm.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Training;

/// <summary>
/// Everything needed to continue a training run exactly where it stopped: model and EMA weights,
/// the Adam moments, the step, the data loader's position, the noise generator's state, the
/// schedule's fingerprint and the resolved spec (as text). Owns its tensors.
/// </summary>
/// <remarks>
/// File layout (little-endian): "DDPMCKPT", int32 format version, int64 payload length, the payload,
/// then the SHA-256 of the payload. The payload holds the metadata, then every tensor in TorchSharp's
/// own serialisation (<c>Tensor.Save</c>), the optimiser's own <c>save_state_dict</c> bytes, (from
/// version 2) which weights sampling should use with the evaluation that chose them, and (from version 3) the float16
/// loss scaler's state. Older files still load. Every tensor is written from the CPU, so a file written on one device
/// loads on any other.
/// Reproducing a run bit for bit also needs the same torch thread count (<see cref="TorchThreads"/>).
/// A file is written to <c>&lt;path&gt;.tmp</c>, flushed to disk, then moved over <c>&lt;path&gt;</c>,
/// so a crash leaves either the old checkpoint or the new one, never half of one.
/// </remarks>
public sealed class Checkpoint : IDisposable
{
    /// <summary>The format version this build writes (3: with the float16 loss scaler's state; 4: with the class names of a conditional model).</summary>
    public const int FormatVersion = 4;
    /// <summary>The oldest format this build reads.</summary>
    public const int OldestFormatVersion = 1;
    private const int HashBytes = 32;
    private static ReadOnlySpan<byte> Magic => "DDPMCKPT"u8;

    /// <summary>Wraps a training state; the checkpoint takes ownership of every tensor passed in.</summary>
    /// <param name="step">Optimiser steps completed (&gt;= 0).</param>
    /// <param name="epoch">Epoch of the next batch.</param>
    /// <param name="batch">Index of the next batch within <paramref name="epoch"/>.</param>
    /// <param name="scheduleFingerprint">The training schedule's <see cref="Ddpm.Schedules.ScheduleTables.Fingerprint"/>.</param>
    /// <param name="specText">The resolved spec as YAML; null is stored as "".</param>
    /// <param name="model">The model's state dict: name and tensor, in the module's order.</param>
    /// <param name="ema">The EMA model's state dict, or null when the run keeps no EMA.</param>
    /// <param name="optimizerState">The optimiser's <c>save_state_dict</c> bytes.</param>
    /// <param name="rngState">The training noise generator's state.</param>
    /// <param name="torchThreads">torch.get_num_threads() of the run.</param>
    public Checkpoint(long step, int epoch, int batch, string scheduleFingerprint, string specText,
                      IReadOnlyList<(string Name, Tensor Value)> model, IReadOnlyList<(string Name, Tensor Value)>? ema,
                      byte[] optimizerState, Tensor rngState, int torchThreads)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "step must be >= 0.");
        Step = step;
        Epoch = epoch;
        Batch = batch;
        ScheduleFingerprint = scheduleFingerprint ?? throw new ArgumentNullException(nameof(scheduleFingerprint));
        SpecText = specText ?? "";
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Ema = ema;
        OptimizerState = optimizerState ?? throw new ArgumentNullException(nameof(optimizerState));
        RngState = rngState ?? throw new ArgumentNullException(nameof(rngState));
        TorchThreads = torchThreads;
    }

    /// <summary>Optimiser steps completed.</summary>
    public long Step { get; }
    /// <summary>The data loader's position: the next batch is batch <see cref="Batch"/> of epoch <see cref="Epoch"/>.</summary>
    public int Epoch { get; }
    /// <summary>Index, within <see cref="Epoch"/>, of the next batch the run trains on (0-based).</summary>
    public int Batch { get; }
    /// <summary>Fingerprint of the noise schedule the run trained under (<see cref="Ddpm.Schedules.ScheduleTables.Fingerprint"/>); checked by <see cref="CheckSchedule"/>.</summary>
    public string ScheduleFingerprint { get; }
    /// <summary>The resolved spec (YAML) the run was started with, for the record.</summary>
    public string SpecText { get; }
    /// <summary>The trained (raw) weights and buffers as a state dict: name and tensor, in the module's order (CPU tensors when captured or loaded).</summary>
    public IReadOnlyList<(string Name, Tensor Value)> Model { get; }
    /// <summary>Null when the run has no EMA (decay 0).</summary>
    public IReadOnlyList<(string Name, Tensor Value)>? Ema { get; }
    /// <summary>The optimiser's state in TorchSharp's <c>save_state_dict</c> format.</summary>
    public byte[] OptimizerState { get; }
    /// <summary>The training noise generator's state (<c>Generator.get_state()</c>).</summary>
    public Tensor RngState { get; }
    /// <summary>
    /// torch.get_num_threads() when the checkpoint was written. CPU reductions split work by thread, so
    /// the loss curve is bit-reproducible only with the same count: set it before resuming to continue exactly.
    /// </summary>
    public int TorchThreads { get; }
    /// <summary>Which weights sampling should use by default, as the run's evaluation found (Unknown: EMA if there is one).</summary>
    public SamplingWeights PreferredWeights { get; init; }
    /// <summary>Why: the evaluation that chose <see cref="PreferredWeights"/> ("FID 21.3 (EMA) vs 24.0 (raw) at step 468"), or "".</summary>
    public string PreferenceReason { get; init; } = "";
    /// <summary>The float16 loss scale (<see cref="LossScaler.Scale"/>) when the run had one; 0 otherwise.</summary>
    public double LossScale { get; init; }
    /// <summary>The loss scaler's good steps since its last change (<see cref="LossScaler.GoodSteps"/>).</summary>
    public int LossScaleGoodSteps { get; init; }
    /// <summary>A class-conditional model's class names, entry i naming label i (from its training data); empty otherwise.</summary>
    public IReadOnlyList<string> ClassNames { get; init; } = Array.Empty<string>();
    /// <summary>The file this checkpoint was read from, if any; named in errors.</summary>
    public string Source { get; private init; } = "<memory>";

    /// <summary>Writes the checkpoint atomically: <c>path.tmp</c>, flush to disk, rename over <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] payload = WritePayload();
        byte[] hash = SHA256.HashData(payload);
        string temporary = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write((long)payload.Length);
                writer.Write(payload);
                writer.Write(hash);
                writer.Flush();
                stream.Flush(flushToDisk: true); // fsync before the rename makes the new name visible
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// Whether <paramref name="path"/> is an existing file that starts like a Ddpm checkpoint (its first eight bytes), read
    /// without loading it: the CLI replaces such a file only with another checkpoint.
    /// </summary>
    internal static bool IsCheckpoint(string path)
    {
        try
        {
            if (!File.Exists(path)) return false;
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Span<byte> start = stackalloc byte[8];
            return stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false) == start.Length && start.SequenceEqual(Magic);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Reads and verifies a checkpoint file (magic, format version, length, checksum).</summary>
    public static Checkpoint Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, $"cannot be read: {e.Message}", e);
        }

        int header = Magic.Length + sizeof(int) + sizeof(long);
        if (bytes.Length < Magic.Length || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new CheckpointException(path, "is not a Ddpm checkpoint (the file does not start with \"DDPMCKPT\").");
        if (bytes.Length < header)
            throw new CheckpointException(path, $"is truncated: {bytes.Length} bytes, shorter than the {header}-byte header.");
        int version = BitConverter.ToInt32(bytes, Magic.Length);
        if (version < OldestFormatVersion || version > FormatVersion)
            throw new CheckpointException(path, $"has format version {version}; this build reads versions {OldestFormatVersion} to {FormatVersion}.");
        long length = BitConverter.ToInt64(bytes, Magic.Length + sizeof(int));
        long expected = header + length + HashBytes;
        if (length < 0 || bytes.LongLength != expected)
            throw new CheckpointException(path, bytes.LongLength < expected
                ? $"is truncated: {bytes.LongLength} bytes, the header promises {expected}."
                : $"has {bytes.LongLength} bytes, the header promises {expected}; the file is corrupt.");
        var payload = bytes.AsSpan(header, (int)length);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(header + (int)length, HashBytes)))
            throw new CheckpointException(path, "is corrupt: the SHA-256 checksum of its contents does not match.");

        try
        {
            using var stream = new MemoryStream(bytes, header, (int)length, writable: false);
            using var reader = new BinaryReader(stream, Encoding.UTF8);
            return ReadPayload(reader, path, version);
        }
        catch (Exception e) when (e is not CheckpointException)
        {
            throw new CheckpointException(path, $"is corrupt: {e.Message}", e);
        }
    }

    /// <summary>
    /// The weights to sample with: <paramref name="requested"/> if it names EMA or raw (EMA must exist), else (Unknown) the
    /// weights the run's evaluation preferred, else the EMA weights when there are some. Returns the state, its short name
    /// ("EMA" or "raw") and why it was chosen.
    /// </summary>
    public (IReadOnlyList<(string Name, Tensor Value)> State, string Weights, string Why) SamplingState(SamplingWeights requested = SamplingWeights.Unknown)
    {
        if (requested == SamplingWeights.Ema && Ema is null)
            throw new CheckpointException(Source, "has no EMA weights (the run had ema_decay 0); sample its raw weights.");
        if (requested == SamplingWeights.Raw) return (Model, "raw", "as asked");
        if (requested == SamplingWeights.Ema) return (Ema!, "EMA", "as asked");
        if (PreferredWeights == SamplingWeights.Raw) return (Model, "raw", $"the run's evaluation scored them better: {PreferenceReason}");
        if (Ema is null) return (Model, "raw", "the run kept no EMA");
        return PreferredWeights == SamplingWeights.Ema
            ? (Ema, "EMA", $"the run's evaluation scored them better: {PreferenceReason}")
            : (Ema, "EMA", "the run was not evaluated; EMA is the default");
    }

    /// <summary>Rejects a checkpoint trained under another noise schedule.</summary>
    public void CheckSchedule(string fingerprint)
    {
        if (!string.Equals(ScheduleFingerprint, fingerprint, StringComparison.Ordinal))
            throw new CheckpointException(Source,
                $"was trained with the noise schedule of fingerprint {ScheduleFingerprint}, but the current schedule's fingerprint is {fingerprint}. " +
                "Use the schedule (kind, timesteps, beta range) the checkpoint was trained with.");
    }

    /// <summary>
    /// Checks that <paramref name="saved"/> has exactly the keys, shapes and dtypes of <paramref name="target"/>'s
    /// state dict, naming the first key (in the module's order) that does not match.
    /// </summary>
    public void CheckState(string section, IReadOnlyList<(string Name, Tensor Value)> saved, nn.Module target)
    {
        var expected = target.state_dict();
        var byName = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, value) in saved) byName[name] = value;
        foreach (var (name, value) in expected)
        {
            if (!byName.Remove(name, out var stored))
                throw new CheckpointException(Source,
                    $"{section} state does not match the model: key '{name}' ({Describe(value)}) is missing from the checkpoint " +
                    $"(the checkpoint has {saved.Count} keys, the model {expected.Count}).");
            if (stored.dtype != value.dtype || !stored.shape.SequenceEqual(value.shape))
                throw new CheckpointException(Source,
                    $"{section} state does not match the model: key '{name}' is {Describe(stored)} in the checkpoint but {Describe(value)} in the model.");
        }
        if (byName.Count > 0)
            throw new CheckpointException(Source,
                $"{section} state does not match the model: key '{saved.First(p => byName.ContainsKey(p.Name)).Name}' is in the checkpoint but not in the model.");
    }

    /// <summary>Copies checked weights into <paramref name="target"/> (in place, without autograd).</summary>
    public void CopyInto(string section, IReadOnlyList<(string Name, Tensor Value)> saved, nn.Module target)
    {
        CheckState(section, saved, target);
        var expected = target.state_dict();
        using var _ = no_grad();
        foreach (var (name, value) in saved)
            expected[name].copy_(value);
    }

    /// <summary>Disposes the tensors the checkpoint owns: model and EMA state and the generator state.</summary>
    public void Dispose()
    {
        foreach (var (_, value) in Model) value.Dispose();
        if (Ema is not null)
            foreach (var (_, value) in Ema) value.Dispose();
        RngState.Dispose();
    }

    private static string Describe(Tensor t) => $"{t.dtype} [{string.Join(", ", t.shape)}]";

    private byte[] WritePayload()
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(ScheduleFingerprint);
            writer.Write(SpecText);
            writer.Write(Step);
            writer.Write(Epoch);
            writer.Write(Batch);
            writer.Write(TorchThreads);
            WriteTensors(writer, Model);
            writer.Write(Ema is not null);
            if (Ema is not null) WriteTensors(writer, Ema);
            writer.Write(OptimizerState.Length);
            writer.Write(OptimizerState);
            RngState.Save(writer);
            writer.Write((byte)PreferredWeights);
            writer.Write(PreferenceReason);
            writer.Write(LossScale);
            writer.Write(LossScaleGoodSteps);
            writer.Write(ClassNames.Count);
            foreach (string name in ClassNames) writer.Write(name);
            writer.Flush();
        }
        return stream.ToArray();
    }

    private static void WriteTensors(BinaryWriter writer, IReadOnlyList<(string Name, Tensor Value)> tensors)
    {
        writer.Write(tensors.Count);
        foreach (var (name, value) in tensors)
        {
            writer.Write(name);
            value.Save(writer);
        }
    }

    private static Checkpoint ReadPayload(BinaryReader reader, string path, int version)
    {
        var owned = new List<Tensor>();
        try
        {
            string fingerprint = reader.ReadString();
            string spec = reader.ReadString();
            long step = reader.ReadInt64();
            int epoch = reader.ReadInt32();
            int batch = reader.ReadInt32();
            int threads = reader.ReadInt32();
            var model = ReadTensors(reader, owned, "");
            var ema = reader.ReadBoolean() ? ReadTensors(reader, owned, "EMA ") : null;
            // Weights that are not finite draw black images: refused here, where every reader of checkpoints passes.
            if (FiniteWeights.FirstNonFinite(model) is { } badRaw)
                throw new CheckpointException(path, $"its weights are not finite: {FiniteWeights.Describe(badRaw)}; the run diverged before it was saved. Use an earlier checkpoint.");
            if (ema is not null && FiniteWeights.FirstNonFinite(ema) is { } badEma)
                throw new CheckpointException(path, $"its EMA weights are not finite: {FiniteWeights.Describe(badEma)}; the run diverged before it was saved. Use an earlier checkpoint.");
            int optimizerLength = reader.ReadInt32();
            // Checked before ReadBytes allocates the length it is given.
            if (optimizerLength < 0 || optimizerLength > reader.BaseStream.Length - reader.BaseStream.Position)
                throw new InvalidDataException($"the optimiser state claims {optimizerLength} bytes, but only {reader.BaseStream.Length - reader.BaseStream.Position} bytes are left in the checkpoint.");
            byte[] optimizer = reader.ReadBytes(optimizerLength);
            var rng = ReadTensor(reader, "the noise generator state");
            owned.Add(rng);
            var preferred = SamplingWeights.Unknown;
            string reason = "";
            if (version >= 2)
            {
                byte stored = reader.ReadByte();
                if (!Enum.IsDefined((SamplingWeights)stored))
                    throw new InvalidDataException($"unknown preferred-weights value {stored}.");
                preferred = (SamplingWeights)stored;
                reason = reader.ReadString();
            }
            double lossScale = 0;
            int lossScaleGoodSteps = 0;
            if (version >= 3)
            {
                lossScale = reader.ReadDouble();
                lossScaleGoodSteps = reader.ReadInt32();
                if (!(lossScale >= 0) || !double.IsFinite(lossScale) || lossScaleGoodSteps < 0)
                    throw new InvalidDataException($"invalid loss scaler state (scale {lossScale}, good steps {lossScaleGoodSteps}).");
            }
            var classNames = Array.Empty<string>();
            if (version >= 4)
            {
                int count = reader.ReadInt32();
                if (count < 0 || count > 65536)
                    throw new InvalidDataException($"invalid class name count {count}.");
                classNames = new string[count];
                for (int i = 0; i < count; i++) classNames[i] = reader.ReadString();
            }
            if (reader.BaseStream.Position != reader.BaseStream.Length)
                throw new InvalidDataException($"{reader.BaseStream.Length - reader.BaseStream.Position} unexpected bytes after the last section.");
            if (step < 0 || epoch < 0 || batch < 0)
                throw new InvalidDataException($"negative position (step {step}, epoch {epoch}, batch {batch}).");
            return new Checkpoint(step, epoch, batch, fingerprint, spec, model, ema, optimizer, rng, threads)
            {
                Source = path, PreferredWeights = preferred, PreferenceReason = reason,
                LossScale = lossScale, LossScaleGoodSteps = lossScaleGoodSteps, ClassNames = classNames,
            };
        }
        catch
        {
            foreach (var t in owned) t.Dispose();
            throw;
        }
    }

    private static List<(string Name, Tensor Value)> ReadTensors(BinaryReader reader, List<Tensor> owned, string section)
    {
        int count = reader.ReadInt32();
        if (count < 0) throw new InvalidDataException($"negative tensor count {count}.");
        var tensors = new List<(string, Tensor)>(Math.Min(count, 4096));
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var value = ReadTensor(reader, $"{section}tensor '{name}'");
            owned.Add(value);
            tensors.Add((name, value));
        }
        return tensors;
    }

    /// <summary>
    /// Reads one tensor in TorchSharp's format (<c>Tensor.Save</c>: dtype code, rank and sizes in LEB128, then the bytes),
    /// checking its header against the bytes left in the payload before anything is allocated, so a crafted header is
    /// one error naming <paramref name="what"/> instead of an allocation failure or libtorch's own.
    /// </summary>
    private static Tensor ReadTensor(BinaryReader reader, string what)
    {
        var stream = reader.BaseStream;
        long start = stream.Position;
        long code = Leb128(reader, what);
        int? elementSize = code is >= 0 and <= sbyte.MaxValue ? StoredTensor.ElementSize((ScalarType)code) : null;
        if (elementSize is null)
            throw new InvalidDataException($"{what} has dtype code {code}, which is no tensor type a checkpoint holds.");
        var type = (ScalarType)code;
        long rank = Leb128(reader, what);
        if (rank < 0 || rank > StoredTensor.MaxDimensions)
            throw new InvalidDataException($"{what} ({type}) has {rank} dimensions; a tensor has 0 to {StoredTensor.MaxDimensions}.");
        var shape = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            shape[i] = Leb128(reader, what);
            if (shape[i] < 0)
                throw new InvalidDataException($"{what} ({type}) has size {shape[i]} in dimension {i}; sizes are >= 0.");
        }
        long left = stream.Length - stream.Position;
        long? bytes = StoredTensor.Bytes(shape, elementSize.Value);
        if (bytes is null || bytes > left)
            throw new InvalidDataException(
                $"{what} ({type} {StoredTensor.Shape(shape)}) needs {(bytes is null ? $"more than {long.MaxValue}" : bytes.ToString())} bytes, " +
                $"but only {left} bytes are left in the checkpoint.");
        stream.Position = start; // TorchSharp reads the header again, now known to be sound
        return TensorExtensionMethods.Load(reader).DetachFromDisposeScope();
    }

    /// <summary>A LEB128 number as TorchSharp decodes it (at most 10 bytes: a longer one is not a number TorchSharp wrote).</summary>
    private static long Leb128(BinaryReader reader, string what)
    {
        long result = 0;
        for (int i = 0; i < 10; i++)
        {
            long b = reader.ReadByte();
            result += (b & 0x7f) << (i * 7);
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException($"{what} has a header number longer than 10 bytes.");
    }
}

/// <summary>Which of a checkpoint's weights sampling uses by default.</summary>
public enum SamplingWeights : byte
{
    /// <summary>Not evaluated: the EMA weights if the run keeps them, else the raw ones.</summary>
    Unknown = 0,
    /// <summary>The exponential moving average scored better.</summary>
    Ema = 1,
    /// <summary>The trained (raw) weights scored better.</summary>
    Raw = 2,
}
