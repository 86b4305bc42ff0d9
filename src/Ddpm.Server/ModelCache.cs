namespace Ddpm.Server;

/// <summary>
/// Loaded models, so a request does not load its weights again: up to <c>capacity</c> models (a checkpoint with its weights,
/// or an .onnx file), least recently used dropped first, each with up to <c>perModel</c> instances so that jobs on one model
/// can run at once. An instance is lent to one job at a time (neither a TorchSharp module nor an ONNX session is shared
/// between threads here). A model whose file changed (ddpm train rewrites last.ckpt) is loaded again.
/// </summary>
internal sealed class ModelCache(int capacity, int perModel) : IDisposable
{
    private readonly object gate = new();
    private readonly LinkedList<Pool> pools = new(); // most recently used first

    /// <summary>Lends an instance of the model <paramref name="key"/> names, loading one when none is idle and fewer than perModel exist.</summary>
    public Lease Rent(string key, string file, Func<IDisposable> load, Func<IDisposable, ModelInfo> describe, CancellationToken cancellationToken) =>
        Find(key, file, load, describe).Rent(cancellationToken);

    /// <summary>What the model is (name, timesteps, classes), loading one instance the first time it is asked for.</summary>
    public ModelInfo Describe(string key, string file, Func<IDisposable> load, Func<IDisposable, ModelInfo> describe, CancellationToken cancellationToken)
    {
        var pool = Find(key, file, load, describe);
        // Whoever holds an instance has loaded one, so the info appears then: wait for it or for a free instance,
        // never for a job that holds every instance of the model.
        while (pool.Info is null)
            pool.TryRent(TimeSpan.FromMilliseconds(50), cancellationToken)?.Dispose();
        return pool.Info;
    }

    private Pool Find(string key, string file, Func<IDisposable> load, Func<IDisposable, ModelInfo> describe)
    {
        var stamp = Stamp(file);
        lock (gate)
        {
            var node = pools.First;
            while (node is not null && node.Value.Key != key) node = node.Next;
            if (node is not null && node.Value.Stamp != stamp)
            {
                node.Value.Retire();
                pools.Remove(node);
                node = null;
            }
            if (node is null)
            {
                node = pools.AddFirst(new Pool(key, stamp, load, describe, perModel));
                while (pools.Count > Math.Max(1, capacity))
                {
                    pools.Last!.Value.Retire();
                    pools.RemoveLast();
                }
            }
            else if (node != pools.First)
            {
                pools.Remove(node);
                pools.AddFirst(node);
            }
            return node.Value;
        }
    }

    /// <summary>Models loaded now (instances, over all models), for tests and the status line.</summary>
    public int Instances
    {
        get { lock (gate) return pools.Sum(p => p.Created); }
    }

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var pool in pools) pool.Retire();
            pools.Clear();
        }
    }

    private static (long, DateTime) Stamp(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
    }

    /// <summary>An instance lent to one job; disposing it gives it back.</summary>
    public sealed class Lease(Pool pool, IDisposable model) : IDisposable
    {
        private int returned;
        public IDisposable Model { get; } = model;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref returned, 1) == 0) pool.Return(Model);
        }
    }

#pragma warning disable CA1001 // its SemaphoreSlim never makes a wait handle (nothing to release); Retire disposes the models
    public sealed class Pool(string key, (long, DateTime) stamp, Func<IDisposable> load, Func<IDisposable, ModelInfo> describe, int size)
    {
        private readonly Stack<IDisposable> idle = new();
        private readonly SemaphoreSlim slots = new(size, size);
        private bool retired;

        public string Key { get; } = key;
        public (long, DateTime) Stamp { get; } = stamp;
        public int Created { get; private set; }
        public ModelInfo? Info { get; private set; }

        public Lease Rent(CancellationToken cancellationToken) => TryRent(Timeout.InfiniteTimeSpan, cancellationToken)!;

        /// <summary>An instance, or null when none came free within <paramref name="timeout"/>.</summary>
        public Lease? TryRent(TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (!slots.Wait(timeout, cancellationToken)) return null;
            try
            {
                lock (idle)
                {
                    if (idle.Count > 0) return new Lease(this, idle.Pop());
                    Created++;
                }
                try
                {
                    var model = load();
                    Info ??= describe(model);
                    return new Lease(this, model);
                }
                catch
                {
                    lock (idle) Created--;
                    throw;
                }
            }
            catch
            {
                slots.Release();
                throw;
            }
        }

        public void Return(IDisposable model)
        {
            bool dispose;
            lock (idle)
            {
                dispose = retired;
                if (dispose) Created--;
                else idle.Push(model);
            }
            if (dispose) model.Dispose();
            slots.Release();
        }

        /// <summary>Drops the idle instances now and the lent ones when they come back.</summary>
        public void Retire()
        {
            IDisposable[] dropped;
            lock (idle)
            {
                retired = true;
                dropped = idle.ToArray();
                idle.Clear();
                Created -= dropped.Length;
            }
            foreach (var model in dropped) model.Dispose();
        }
    }
#pragma warning restore CA1001
}

/// <summary>What the sampling rules need of a model: its name, timesteps and, for a class-conditional one, its classes.</summary>
/// <param name="Name">The model's name.</param>
/// <param name="Timesteps">The schedule's timesteps.</param>
/// <param name="ClassNames">A conditional model's class names; null for an unconditional one.</param>
/// <param name="ChooseClasses">Reads class words for a count and guidance (the model's own rule; ArgumentException when they do not fit).</param>
internal sealed record ModelInfo(string Name, int Timesteps, IReadOnlyList<string>? ClassNames, Func<string, int, double?, (IReadOnlyList<int> Labels, double Guidance)> ChooseClasses);
