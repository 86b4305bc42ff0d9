using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Diffusion;

/// <summary>
/// Where tensors are made: training and sampling run on the device of the model, and every tensor they make is
/// made there, never on an implicit CPU device.
/// </summary>
/// <remarks>
/// Random numbers: TorchSharp 0.107's <see cref="Generator"/> is always a CPU generator underneath, whatever device it
/// is given (its native constructor ignores the device), and libtorch refuses a CPU generator for a CUDA draw. So a
/// seeded draw for another device is made on the CPU and copied over (from pinned memory, without waiting on the device).
/// That keeps one generator per trainer whose state is a CPU tensor: checkpoints stay device-independent, and a CUDA run
/// draws the same noise as a CPU run with the same seed. Unseeded draws use the device's own default generator.
/// </remarks>
public static class Devices
{
    /// <summary>
    /// The device of <paramref name="module"/>'s parameters and buffers (CPU for a module that has none).
    /// Refuses a module spread over several devices: one step cannot run on two.
    /// </summary>
    public static Device Of(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        Device? found = null;
        foreach (var tensor in module.parameters().Cast<Tensor>().Concat(module.buffers()))
        {
            var device = tensor.device;
            if (found is null) found = device;
            else if (!Same(found, device))
                throw new ArgumentException($"The model's weights are on {found} and on {device}; move the whole model to one device.", nameof(module));
        }
        return found ?? CPU;
    }

    /// <summary>Whether two devices are the same (an unspecified index counts as device 0).</summary>
    public static bool Same(Device a, Device b) => a.type == b.type && Math.Max(a.index, 0) == Math.Max(b.index, 0);

    /// <summary>
    /// A CPU tensor made from host data, on <paramref name="device"/>. To CUDA it is copied from pinned memory without
    /// blocking, so the copy does not wait for the device to finish its queue (no synchronisation per step).
    /// </summary>
    public static Tensor FromHost(Tensor host, Device device)
    {
        if (host.device_type != DeviceType.CPU)
            throw new ArgumentException($"Expected a CPU tensor, got one on {host.device}.", nameof(host));
        if (device.type == DeviceType.CPU) return host.alias();
        if (device.type != DeviceType.CUDA) return host.to(device);
        using var pinned = host.pin_memory();
        return pinned.to(device, non_blocking: true);
    }

    /// <summary>N(0, I) noise of <paramref name="shape"/> on <paramref name="device"/>, drawn from <paramref name="generator"/>
    /// (on the CPU, then copied, for other devices; see the class remarks) or, without one, from the device's default generator.</summary>
    public static Tensor Randn(long[] shape, ScalarType dtype, Device device, Generator? generator)
    {
        if (generator is null || device.type == DeviceType.CPU)
            return randn(shape, dtype, device, generator: generator);
        using var host = randn(shape, dtype, CPU, generator: generator);
        return FromHost(host, device);
    }

    /// <summary>Floats uniform in [0, 1) of <paramref name="shape"/> on <paramref name="device"/>, drawn as <see cref="Randn"/> draws.</summary>
    public static Tensor Rand(long[] shape, ScalarType dtype, Device device, Generator? generator)
    {
        if (generator is null || device.type == DeviceType.CPU)
            return rand(shape, dtype, device, generator: generator);
        using var host = rand(shape, dtype, CPU, generator: generator);
        return FromHost(host, device);
    }

    /// <summary>Integers uniform in [0, <paramref name="high"/>) as int64 on <paramref name="device"/>, drawn as <see cref="Randn"/> draws.</summary>
    public static Tensor Randint(long high, long[] shape, Device device, Generator? generator)
    {
        if (generator is null || device.type == DeviceType.CPU)
            return randint(0, high, shape, dtype: ScalarType.Int64, device: device, generator: generator);
        using var host = randint(0, high, shape, dtype: ScalarType.Int64, device: CPU, generator: generator);
        return FromHost(host, device);
    }
}
