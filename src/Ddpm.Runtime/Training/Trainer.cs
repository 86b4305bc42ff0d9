using System.Globalization;
using System.Text;
using Ddpm.Conditioning;
using Ddpm.Data;
using Ddpm.Diffusion;
using Ddpm.Distributed;
using Ddpm.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddpm.Training;

/// <summary>
/// Trains a denoising model (x_t, t) -> eps, x_0 or v (the schedule's objective) with Algorithm 1 of Ho et al. 2020: per step,
/// t ~ U{0..T-1} and eps ~ N(0, I) from the trainer's own seeded generator, x_t = q_sample(x_0, t, eps),
/// loss(target, model(x_t, t)) (min-SNR weighted on request), backward, global-norm clipping, Adam (with linear warm-up),
/// then the EMA update.
/// </summary>
/// <remarks>
/// Same seed, spec, data and initial weights give the same loss sequence bit for bit on the CPU, and a run
/// restored from a checkpoint continues that sequence exactly, provided torch's intra-op thread count is the
/// same: CPU reductions split work by thread, so 1 and 2 threads can differ in the last bits (they do on 2 cores).
/// The trainer does not change the thread count; checkpoints record it (<see cref="Checkpoint.TorchThreads"/>).
/// The trainer owns its optimiser, generator and EMA model; the caller owns the model and the loader.
/// Training runs on the device of the model (move it there before making the trainer): batches, timesteps, noise, the
/// EMA and the low-precision working copy are all made there, and each step moves exactly one thing to the host, the
/// loss with the gradient norm (two numbers, for the progress line and the divergence checks). Checkpoints hold CPU
/// tensors and load on any device; timesteps and noise come from a seeded CPU generator (<see cref="Devices"/>), so a run
/// draws the same noise on every device and a checkpoint's generator state resumes anywhere.
/// Precision: fp32; bf16 (a bfloat16 working copy computes forward and backward, the float32 model keeps the master
/// weights); fp16 (the same with a float16 copy and dynamic loss scaling, <see cref="LossScaler"/>; meant for CUDA).
/// </remarks>
public sealed class Trainer : IDisposable
{
    /// <summary>Adam's epsilon (PyTorch's default); not part of the spec.</summary>
    public const double AdamEpsilon = 1e-8;

    private readonly nn.Module<Tensor, Tensor, Tensor> model;
    private readonly GaussianDiffusion diffusion;
    private readonly BatchLoader loader;
    private readonly TrainingSpec spec;
    private readonly TrainingCallbacks callbacks;
    private readonly string specText;
    private readonly Parameter[] parameters;
    private readonly Adam optimizer;
    private readonly Generator generator;
    private readonly ExponentialMovingAverage? ema;
    private readonly Device device;
    // A class-conditional model: trained on the data's labels, each dropped to the null class with the declared probability.
    private readonly IClassConditional? conditional;
    private IEnumerator<Tensor>? batches;
    // precision bf16 or fp16: forward and backward run on this low-precision copy; the float32 model keeps the master weights.
    private readonly nn.Module<Tensor, Tensor, Tensor>? lowPrecisionModel;
    private readonly Parameter[]? lowPrecisionParameters;
    private readonly ScalarType lowPrecision;
    // precision fp16 only: float16 gradients underflow without it.
    private readonly LossScaler? scaler;
    private string? unusable;
    private readonly System.Diagnostics.Stopwatch sinceCheckpoint = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>
    /// Sets up a run: checks <paramref name="spec"/> against the spec format's rules, makes the optimiser, the seeded noise
    /// generator and, when the spec asks for them, the EMA model and the low-precision working copy; puts the model in training mode.
    /// </summary>
    /// <param name="model">The model to train; stays the caller's.</param>
    /// <param name="diffusion">Schedule and objective: the forward process, the target and the loss.</param>
    /// <param name="loader">Carries batch size, random flip and data seed; see <see cref="CreateLoader"/>.</param>
    /// <param name="spec">The training settings (loss, optimiser, warm-up, clipping, EMA, precision, seed, intervals).</param>
    /// <param name="emaFactory">Builds another instance of the model's architecture: for the EMA (EmaDecay &gt; 0) and for the
    /// bfloat16 working copy (precision bf16).</param>
    /// <param name="callbacks">Progress, sample, evaluation and checkpoint hooks; none when null.</param>
    /// <param name="specText">The resolved spec as YAML, stored verbatim in checkpoints.</param>
    public Trainer(nn.Module<Tensor, Tensor, Tensor> model, GaussianDiffusion diffusion, BatchLoader loader, TrainingSpec spec,
                   Func<nn.Module<Tensor, Tensor, Tensor>>? emaFactory = null, TrainingCallbacks? callbacks = null, string specText = "")
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.diffusion = diffusion ?? throw new ArgumentNullException(nameof(diffusion));
        this.loader = loader ?? throw new ArgumentNullException(nameof(loader));
        this.spec = spec ?? throw new ArgumentNullException(nameof(spec));
        Validate(spec);
        this.callbacks = callbacks ?? new TrainingCallbacks();
        this.specText = specText ?? "";
        parameters = model.parameters().ToArray();
        if (parameters.Length == 0)
            throw new ArgumentException("The model has no parameters to train.", nameof(model));
        device = Devices.Of(model);
        conditional = model as IClassConditional;
        if (conditional is not null) CheckLabels(conditional.Conditioning, loader);

        if (spec.EmaDecay > 0)
        {
            if (emaFactory is null)
                throw new ArgumentException($"ema_decay is {Format(spec.EmaDecay)}, so an EMA model factory is needed (or set ema_decay to 0).", nameof(emaFactory));
            EmaModel = emaFactory() ?? throw new ArgumentException("The EMA model factory returned null.", nameof(emaFactory));
            EmaModel.to(device);
            ema = new ExponentialMovingAverage(model, EmaModel, spec.EmaDecay, spec.EmaWarmup, spec.EmaPower, spec.EmaInvGamma);
        }

        lowPrecision = PrecisionCast.Parse(spec.Precision);
        if (lowPrecision != ScalarType.Float32)
        {
            if (emaFactory is null)
                throw new ArgumentException($"precision {spec.Precision} needs a model factory for the low-precision working copy.", nameof(emaFactory));
            lowPrecisionModel = emaFactory();
            lowPrecisionModel.to(device);
            lowPrecisionModel.to(lowPrecision);
            lowPrecisionModel.train();
            lowPrecisionParameters = lowPrecisionModel.parameters().ToArray();
            if (lowPrecision == ScalarType.Float16)
                scaler = new LossScaler();
        }

        var o = spec.Optimizer;
        optimizer = optim.Adam(parameters, o.Lr, o.Beta1, o.Beta2, AdamEpsilon, o.WeightDecay);
        // The moments are made here; keep them alive even if the caller builds the trainer inside a dispose scope.
        foreach (var state in optimizer.state_dict().State.Cast<Adam.State>())
        {
            state.exp_avg.DetachFromDisposeScope();
            state.exp_avg_sq.DetachFromDisposeScope();
        }
        generator = new Generator(unchecked((ulong)spec.Seed), CPU); // CPU on every device: see Devices
        TotalSteps = spec.Steps ?? (long)spec.Epochs * loader.BatchesPerEpoch;
        model.train();
    }

    /// <summary>The model being trained (the raw, float32 master weights); owned by the caller.</summary>
    public nn.Module<Tensor, Tensor, Tensor> Model => model;
    /// <summary>Where training runs: the device of the model.</summary>
    public Device Device => device;
    /// <summary>The float16 loss scaler (precision fp16); null otherwise.</summary>
    public LossScaler? Scaler => scaler;
    /// <summary>Steps skipped because float16 gradients overflowed (precision fp16); they change only the loss scale.</summary>
    public long SkippedSteps { get; private set; }
    /// <summary>The averaged weights (owned by the trainer); null when EmaDecay is 0.</summary>
    public nn.Module<Tensor, Tensor, Tensor>? EmaModel { get; }
    /// <summary>The model to sample from: the EMA model if there is one, unless evaluation found the raw weights better.</summary>
    public nn.Module<Tensor, Tensor, Tensor> SamplingModel =>
        PreferredWeights == SamplingWeights.Raw || EmaModel is null ? model : EmaModel;
    /// <summary>Which weights sampling should use, as the latest evaluation found; saved in checkpoints.</summary>
    public SamplingWeights PreferredWeights { get; private set; }
    /// <summary>The evaluation behind <see cref="PreferredWeights"/>, for the record.</summary>
    public string PreferenceReason { get; private set; } = "";

    /// <summary>Records which weights scored better (called by the front end's evaluation).</summary>
    public void PreferWeights(SamplingWeights weights, string reason)
    {
        if (weights == SamplingWeights.Ema && EmaModel is null)
            throw new InvalidOperationException("This run keeps no EMA weights to prefer.");
        PreferredWeights = weights;
        PreferenceReason = reason ?? "";
    }
    /// <summary>The schedule and objective the model is trained under.</summary>
    public GaussianDiffusion Diffusion => diffusion;
    /// <summary>Optimiser steps completed.</summary>
    public long Step { get; private set; }
    /// <summary>Steps from the spec: Steps if set, else Epochs x batches per epoch.</summary>
    public long TotalSteps { get; }
    /// <summary>Position of the next batch: batch <see cref="Batch"/> of epoch <see cref="Epoch"/>.</summary>
    public int Epoch { get; private set; }
    /// <summary>Index, within <see cref="Epoch"/>, of the next batch (0-based).</summary>
    public int Batch { get; private set; }

    /// <summary>
    /// Data-parallel training with other processes (null: this process alone). Each rank's loader reads its
    /// <see cref="BatchLoader.Shard"/> of every batch; rank 0's state is broadcast when training starts, the gradients are
    /// averaged every step and the weights compared every <see cref="DataParallel.CheckEvery"/> steps and after the last.
    /// Owned by the caller.
    /// </summary>
    public DataParallel? Parallel { get; init; }

    /// <summary>The loader the spec describes: its batch size, random flip and seed.</summary>
    public static BatchLoader CreateLoader(ImageSet data, TrainingSpec spec) =>
        new(data, spec.BatchSize, spec.RandomFlip, spec.Seed);

    /// <summary>Linear warm-up: lr * step / warmup for step &lt; warmup (step is 1-based), then lr.</summary>
    public static double WarmupLearningRate(double lr, int warmupSteps, long step) =>
        warmupSteps > 0 && step < warmupSteps ? lr * step / warmupSteps : lr;

    /// <summary>The learning rate of 1-based step <paramref name="step"/>.</summary>
    public double LearningRateAt(long step) => WarmupLearningRate(spec.Optimizer.Lr, spec.WarmupSteps, step);

    /// <summary>Trains until <see cref="TotalSteps"/>.</summary>
    public void Train(CancellationToken cancellationToken = default) => TrainUntil(TotalSteps, cancellationToken);

    /// <summary>Trains until <see cref="Step"/> reaches <paramref name="untilStep"/> (cancellation is checked between steps).</summary>
    public void TrainUntil(long untilStep, CancellationToken cancellationToken = default)
    {
        sinceCheckpoint.Restart();
        try
        {
            SynchronizeReplicas();
            while (Step < untilStep)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TrainStep();
            }
        }
        finally
        {
            CloseBatches();
        }
    }

    /// <summary>One optimiser step, then the progress, sample and checkpoint callbacks. Returns the loss.</summary>
    /// <exception cref="TrainingDivergedException">The loss or the gradient norm is NaN or infinite; the weights are left as they were before this step.
    /// With precision fp16, non-finite gradients are an overflow instead: the step is skipped and the loss scale halved.</exception>
    public double TrainStep()
    {
        ThrowIfUnusable();
        long step = Step + 1;
        double lr = LearningRateAt(step);
        double loss, gradNorm;
        int epoch;
        bool skipped = false;
        using (var scope = NewDisposeScope())
        {
            var x0 = NextBatch();
            epoch = Epoch;
            // Algorithm 1: t ~ Uniform({0, ..., T-1}), eps ~ N(0, I); t first, then eps, always from the trainer's generator.
            // A data-parallel rank draws them for the whole batch, as one process does, and keeps its shard's rows.
            var (shard, rows) = (loader.Shard, x0.shape[0]);
            var shape = x0.shape.ToArray();
            shape[0] = rows * shard.Count;
            var t = Devices.Randint(diffusion.Timesteps, new long[] { shape[0] }, device, generator);
            var noise = Devices.Randn(shape, ScalarType.Float32, device, generator);
            // A conditional model's labels, then their dropout draws (after t and eps, so unconditional runs draw as before);
            // BatchLabels gives the whole batch's, so the draws are one process's here too.
            var labels = conditional is null ? null
                : conditional.Conditioning.DropLabels(tensor(loader.BatchLabels(epoch, Batch - 1), device: device), generator);
            if (shard.Count > 1)
            {
                t = t.narrow(0, shard.Index * rows, rows);
                noise = noise.narrow(0, shard.Index * rows, rows);
                labels = labels?.narrow(0, shard.Index * rows, rows);
            }
            optimizer.zero_grad();
            var lossTensor = lowPrecisionModel is not null ? LowPrecisionLoss(x0, t, noise, labels)
                : labels is null ? diffusion.Loss(model, x0, t, noise, spec.Loss, spec.MinSnrGamma)
                : diffusion.ObjectiveLoss(conditional!.forward(diffusion.QSample(x0, t, noise), t, labels), diffusion.Target(x0, t, noise), t,
                                          spec.Loss, spec.MinSnrGamma);
            (scaler is null ? lossTensor : scaler.ScaleLoss(lossTensor)).backward();
            if (lowPrecisionParameters is not null)
                for (int i = 0; i < parameters.Length; i++) // low-precision gradients onto the float32 master weights
                    parameters[i].grad = lowPrecisionParameters[i].grad!.to(ScalarType.Float32);
            Parallel?.AverageGradients(parameters, step);
            scaler?.Unscale(parameters.Select(p => p.grad));
            var norm = ClipGradients(parameters, spec.GradClip);
            // The step's one device-to-host transfer: the loss and the gradient norm before clipping.
            using (var host = stack(new[] { lossTensor.detach().to(ScalarType.Float32), norm }).cpu())
            {
                var values = host.data<float>().ToArray();
                loss = Parallel?.Average(values[0], step) ?? values[0]; // the mean over the ranks: every rank sees a divergence
                gradNorm = values[1];
            }
            if (!double.IsFinite(loss))
                throw Diverged(step, "the loss", loss);
            if (scaler is not null)
                skipped = !scaler.Update(double.IsFinite(gradNorm));
            else if (!double.IsFinite(gradNorm))
                throw Diverged(step, "the gradient norm", gradNorm);

            if (!skipped)
            {
                foreach (var group in optimizer.ParamGroups)
                    group.LearningRate = lr;
                optimizer.step();
                ema?.Update(step);
            }
        }
        if (skipped) SkippedSteps++;
        Step = step;
        if (Parallel is { IsDistributed: true } parallel && (parallel.CheckDue(step) || step == TotalSteps))
            CheckReplicas(parallel);

        callbacks.Progress?.Report(new TrainingProgress(step, TotalSteps, loss, lr, gradNorm, epoch));
        bool final = step == TotalSteps;
        // The checkpoint first: evaluation and sample grids take minutes on a CPU, and a run stopped during them
        // must not lose its steps.
        bool checkpointTime = callbacks.CheckpointInterval is { } interval && sinceCheckpoint.Elapsed >= interval;
        if (callbacks.CheckpointDue is { } checkpoint && (final || checkpointTime || (spec.CheckpointEvery > 0 && step % spec.CheckpointEvery == 0)))
        {
            checkpoint(new CheckpointRequest(step, final, this));
            sinceCheckpoint.Restart();
        }
        if (callbacks.EvaluationDue is { } evaluate && spec.Eval.Every > 0 && (final || step % spec.Eval.Every == 0))
            evaluate(new EvaluationRequest(step, final, this));
        if (callbacks.SampleDue is { } sample && (final || (spec.SampleEvery > 0 && step % spec.SampleEvery == 0)))
            sample(new SampleRequest(step, final, SamplingModel, diffusion));
        return loss;
    }

    /// <summary>
    /// Global-norm clipping on the device (libtorch's clip_grad_norm_ without its host read of the norm): the L2 norm of
    /// all gradients as if concatenated, and with <paramref name="maxNorm"/> &gt; 0 every gradient times
    /// min(1, maxNorm / (norm + 1e-6)). Returns the norm before clipping as a one-element tensor on the device.
    /// </summary>
    public static Tensor ClipGradients(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var gradients = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToArray();
        if (gradients.Length == 0)
            throw new InvalidOperationException("No parameter has a gradient to clip; call backward first.");
        var norms = gradients.Select(g => g.norm(p: 2f)).ToArray();
        var total = norms.Length == 1 ? norms[0] : stack(norms).norm(p: 2f);
        if (maxNorm > 0)
        {
            var factor = (total + 1e-6).reciprocal_().mul_(maxNorm).clamp_max_(1.0);
            foreach (var g in gradients)
                g.mul_(factor);
        }
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>Writes the current state atomically; refuses (with <see cref="TrainingDivergedException"/>) if any weight is NaN or infinite.</summary>
    public void SaveCheckpoint(string path)
    {
        ThrowIfUnusable();
        CheckWeightsFinite();
        using var checkpoint = Capture();
        checkpoint.Save(path);
    }

    /// <summary>A snapshot of the current state (copies of all tensors).</summary>
    public Checkpoint Capture()
    {
        ThrowIfUnusable();
        byte[] optimizerState;
        using (var stream = new MemoryStream())
        {
            using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
                optimizer.save_state_dict(writer);
            optimizerState = stream.ToArray();
        }
        Tensor rng;
        using (var state = generator.get_state())
            rng = state.clone().DetachFromDisposeScope();
        return new Checkpoint(Step, Epoch, Batch, diffusion.Tables.Fingerprint, specText,
                              CloneState(model), EmaModel is null ? null : CloneState(EmaModel), optimizerState, rng, get_num_threads())
        {
            PreferredWeights = PreferredWeights, PreferenceReason = PreferenceReason,
            LossScale = scaler?.Scale ?? 0, LossScaleGoodSteps = scaler?.GoodSteps ?? 0,
            ClassNames = conditional is null ? Array.Empty<string>() : loader.ClassNames ?? Array.Empty<string>(),
        };
    }

    /// <summary>Reads a checkpoint and continues from it (see <see cref="Restore"/>).</summary>
    public void LoadCheckpoint(string path)
    {
        using var checkpoint = Checkpoint.Load(path);
        Restore(checkpoint);
    }

    /// <summary>
    /// Continues from <paramref name="checkpoint"/>: weights, EMA, Adam moments, step, data position and noise generator.
    /// Everything is checked (schedule fingerprint, state-dict keys and shapes, data position) before anything changes.
    /// Betas and weight decay come from this trainer's spec, so a resumed run may change them.
    /// </summary>
    public void Restore(Checkpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ThrowIfUnusable();
        checkpoint.CheckSchedule(diffusion.Tables.Fingerprint);
        checkpoint.CheckState("model", checkpoint.Model, model);
        if (EmaModel is not null)
        {
            if (checkpoint.Ema is null)
                throw new CheckpointException(checkpoint.Source, $"has no EMA weights, but this run keeps an EMA (ema_decay {Format(spec.EmaDecay)}).");
            checkpoint.CheckState("EMA", checkpoint.Ema, EmaModel);
        }
        if (scaler is not null && checkpoint.LossScale > 0 && checkpoint.LossScaleGoodSteps >= scaler.GrowthInterval)
            throw new CheckpointException(checkpoint.Source, $"has a loss scaler count of {checkpoint.LossScaleGoodSteps}, beyond its growth interval {scaler.GrowthInterval}.");
        if (checkpoint.Batch > loader.BatchesPerEpoch)
            throw new CheckpointException(checkpoint.Source,
                $"stopped at batch {checkpoint.Batch} of epoch {checkpoint.Epoch}, but the loader has {loader.BatchesPerEpoch} batches per epoch; " +
                "the data set or batch size differs from the checkpoint's run.");

        try
        {
            using var reader = new BinaryReader(new MemoryStream(checkpoint.OptimizerState, writable: false), Encoding.UTF8);
            optimizer.load_state_dict(reader);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException)
        {
            unusable = $"restoring the optimiser from '{checkpoint.Source}' failed half way";
            throw new CheckpointException(checkpoint.Source, $"the optimiser state does not fit this model: {e.Message}", e);
        }
        foreach (var group in optimizer.ParamGroups.Cast<ParamGroup>())
        {
            var options = (Adam.Options)group.Options;
            options.beta1 = spec.Optimizer.Beta1;
            options.beta2 = spec.Optimizer.Beta2;
            options.weight_decay = spec.Optimizer.WeightDecay;
            options.eps = AdamEpsilon;
        }
        checkpoint.CopyInto("model", checkpoint.Model, model);
        if (EmaModel is not null)
            checkpoint.CopyInto("EMA", checkpoint.Ema!, EmaModel);
        generator.set_state(checkpoint.RngState);
        // A checkpoint of an fp32 or bf16 run starts fp16 at the initial scale.
        if (scaler is not null && checkpoint.LossScale > 0)
            scaler.Restore(checkpoint.LossScale, checkpoint.LossScaleGoodSteps);
        PreferredWeights = EmaModel is null && checkpoint.PreferredWeights == SamplingWeights.Ema ? SamplingWeights.Unknown : checkpoint.PreferredWeights;
        PreferenceReason = checkpoint.PreferenceReason;
        CloseBatches();
        Step = checkpoint.Step;
        Epoch = checkpoint.Epoch;
        Batch = checkpoint.Batch;
    }

    /// <summary>
    /// The loss computed by the low-precision working copy (bfloat16: AMX / AVX-512-BF16 on recent CPUs; float16 on CUDA)
    /// from the current master weights; the loss itself and the noise target stay float32.
    /// </summary>
    private Tensor LowPrecisionLoss(Tensor x0, Tensor t, Tensor noise, Tensor? labels)
    {
        lowPrecisionModel!.zero_grad();
        using (no_grad())
            for (int i = 0; i < parameters.Length; i++)
                lowPrecisionParameters![i].copy_(parameters[i]);
        var xt = diffusion.QSample(x0.to(lowPrecision), t, noise.to(lowPrecision));
        var output = labels is null ? lowPrecisionModel.forward(xt, t) : ((IClassConditional)lowPrecisionModel).forward(xt, t, labels);
        var predicted = output.to(ScalarType.Float32);
        return diffusion.ObjectiveLoss(predicted, diffusion.Target(x0, t, noise), t, spec.Loss, spec.MinSnrGamma);
    }

    /// <summary>Releases what the trainer owns (optimiser, generator, EMA model, low-precision copy); the trainer is unusable afterwards.</summary>
    public void Dispose()
    {
        CloseBatches();
        lowPrecisionModel?.Dispose();
        optimizer.Dispose();
        generator.Dispose();
        EmaModel?.Dispose();
        unusable ??= "it has been disposed";
    }

    private Tensor NextBatch()
    {
        if (Batch >= loader.BatchesPerEpoch)
        {
            CloseBatches();
            Epoch++;
            Batch = 0;
        }
        // MoveNext runs on this thread, so the batch tensor lands in the step's dispose scope.
        batches ??= loader.Batches(Epoch, Batch, device).GetEnumerator();
        if (!batches.MoveNext())
            throw new InvalidOperationException($"The batch loader ended epoch {Epoch} at batch {Batch} of {loader.BatchesPerEpoch}.");
        Batch++;
        return batches.Current;
    }

    /// <summary>Data-parallel start: every rank takes rank 0's weights, EMA and Adam moments.</summary>
    private void SynchronizeReplicas()
    {
        if (Parallel is not { IsDistributed: true } parallel) return;
        var group = parallel.Group;
        if (loader.Shard != new DataShard(group.Rank, group.Size))
            throw new InvalidOperationException($"Rank {group.Rank} of {group.Size} needs a loader reading shard {group.Rank} of {group.Size}, not {loader.Shard.Index} of {loader.Shard.Count}.");
        var moments = optimizer.state_dict().State.Cast<Adam.State>().SelectMany(s => new[] { s.exp_avg, s.exp_avg_sq });
        parallel.Broadcast(ReplicaState().Concat(moments));
    }

    /// <summary>Rank 0 and this rank hold the same weights and EMA, or training stops here, before a checkpoint of them.</summary>
    private void CheckReplicas(DataParallel parallel)
    {
        try { parallel.CheckReplicas(Step, ReplicaState()); }
        catch (ReplicasDivergedException) { unusable = $"the ranks' weights differ at step {Step}"; throw; }
    }

    /// <summary>What must be equal on every rank: the model's and the EMA's state.</summary>
    private IEnumerable<Tensor> ReplicaState() =>
        model.state_dict().Values.Concat(EmaModel?.state_dict().Values ?? Enumerable.Empty<Tensor>());

    private void CloseBatches()
    {
        batches?.Dispose();
        batches = null;
    }

    private TrainingDivergedException Diverged(long step, string quantity, double value)
    {
        unusable = $"training diverged at step {step}";
        return new TrainingDivergedException(step, quantity, value);
    }

    private void CheckWeightsFinite()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var p in parameters)
        {
            var finite = isfinite(p);
            if (finite.all().item<bool>()) continue;
            double value = p.masked_select(finite.logical_not())[0].item<float>();
            throw Diverged(Step, "a weight", value);
        }
    }

    private void ThrowIfUnusable()
    {
        if (unusable is not null)
            throw new InvalidOperationException($"This trainer can no longer be used: {unusable}. Make a new one and restore the last checkpoint.");
    }

    /// <summary>CPU copies of a module's state (checkpoints are device-independent).</summary>
    private static List<(string Name, Tensor Value)> CloneState(nn.Module module)
    {
        using var scope = NewDisposeScope();
        var state = new List<(string, Tensor)>();
        foreach (var (name, value) in module.state_dict())
        {
            var copy = value.device_type == DeviceType.CPU ? value.detach().clone() : value.detach().cpu();
            state.Add((name, copy.DetachFromDisposeScope()));
        }
        return state;
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A conditional model trains on labelled data with exactly its number of classes.</summary>
    private static void CheckLabels(ClassConditioning conditioning, BatchLoader loader)
    {
        if (!loader.HasLabels || loader.ClassNames is null)
            throw new ArgumentException(
                $"The model is class-conditional ({conditioning.Classes} classes), but the training data has no class labels; use a labelled " +
                "data set (fashion-mnist, mnist, idx:<folder> with its labels file, cifar10:<folder>, images:<folder> with one subfolder per class, synthetic).",
                nameof(loader));
        if (loader.ClassNames.Count != conditioning.Classes)
            throw new ArgumentException(
                $"The model declares {conditioning.Classes} classes, but the training data has {loader.ClassNames.Count} " +
                $"({string.Join(", ", loader.ClassNames)}); set the model's classes to {loader.ClassNames.Count}.", nameof(loader));
    }

    /// <summary>The spec format's rules (TrainingRules, the same table the YAML reader reports from), for settings made in code.</summary>
    private static void Validate(TrainingSpec spec)
    {
        string? problem = TrainingRules.Problems(spec).FirstOrDefault();
        if (problem != null) throw new ArgumentException(problem + ".", nameof(spec));
    }
}
