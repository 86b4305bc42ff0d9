using Ddpm.Diffusion;
using Ddpm.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddpm.Runtime.Tests.Diffusion;

/// <summary>
/// The sampler core (Ddpm.Core's SamplerPlan) and the two schedulers that apply it: the DDPM step's posterior-mean form
/// against eq. 11, the closed-form convergence of the solvers run on the float-array scheduler alone (no TorchSharp), the
/// scheduler API (order of steps, AddNoise) and the whole-loop sampler's progress and cancellation.
/// </summary>
public class SamplerCoreTests(Xunit.Abstractions.ITestOutputHelper log)
{
    static readonly ScheduleTables Cosine = ScheduleMath.Tables(ScheduleKind.Cosine, 1000);
    static readonly ScheduleTables Linear = ScheduleMath.Tables(ScheduleKind.Linear, 1000, 1e-4, 0.02);

    [Fact]
    public void The_posterior_mean_coefficients_equal_eq_11_in_float64_at_every_step()
    {
        foreach (var tables in new[] { Cosine, Linear })
            for (int t = 0; t < tables.Timesteps; t++)
            {
                var step = SamplerPlan.DdpmStep(tables, t);
                double a = tables.SqrtAlphasCumprod[t], s = tables.SqrtOneMinusAlphasCumprod[t];
                const double x0 = 0.7, eps = -1.3;
                double x = a * x0 + s * eps;
                double eq11 = (x - tables.Betas[t] / s * eps) * tables.SqrtRecipAlphas[t];
                double posterior = step.X * x + step.Data * x0;
                Assert.True(Math.Abs(posterior - eq11) <= 1e-9 * Math.Max(1, Math.Abs(eq11)), $"t = {t}: {posterior} vs {eq11}");
                Assert.Equal(t > 0 ? Math.Sqrt(tables.PosteriorVariance[t]) : 0, step.Noise);
            }
    }

    [Fact]
    public void At_the_last_cosine_step_the_posterior_mean_form_rounds_less_than_eq_11()
    {
        // t = T - 1 of the cosine schedule: beta = 0.9999 (clipped), so eq. 11 subtracts nearly equal numbers (x_t and
        // beta / sigma eps, both about the noise) and divides the difference by sqrt(alpha_t) = 0.01; the posterior mean
        // only adds two products. Both in float32 from the same float32 x_t and predicted x_0, against float64.
        int t = Cosine.Timesteps - 1;
        var step = SamplerPlan.DdpmStep(Cosine, t);
        double a = Cosine.SqrtAlphasCumprod[t], s = Cosine.SqrtOneMinusAlphasCumprod[t];
        var random = new Random(7);
        double posteriorError = 0, eq11Error = 0;
        for (int i = 0; i < 100_000; i++)
        {
            float x0 = (float)(2 * random.NextDouble() - 1);
            float x = (float)(a * x0 + s * Normal(random));
            double exact = step.X * x + step.Data * x0; // float64 from the same inputs
            float eps = (x - (float)a * x0) / (float)s; // eps read from x_0, as the backends read it
            float eq11 = (x - (float)(Cosine.Betas[t] / s) * eps) * (float)Cosine.SqrtRecipAlphas[t];
            float posterior = x * (float)step.X + (float)step.Data * x0;
            eq11Error = Math.Max(eq11Error, Math.Abs(eq11 - exact));
            posteriorError = Math.Max(posteriorError, Math.Abs(posterior - exact));
        }
        log.WriteLine($"t = {t}: max float32 error, posterior mean {posteriorError:E2}, eq. 11 {eq11Error:E2}");
        Assert.True(posteriorError < eq11Error / 10, $"posterior mean {posteriorError:E2}, eq. 11 {eq11Error:E2}");
    }

    static double Normal(Random random) => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    [Fact]
    public void The_plans_have_the_documented_shape()
    {
        var ddpm = SamplerPlan.Create(Linear, SamplerKind.Ddpm, steps: 7);
        Assert.Equal(Enumerable.Range(0, 1000).Reverse(), ddpm.Timesteps);
        Assert.Equal(0, ddpm.Steps[^1].Noise);
        var dpm = SamplerPlan.Create(Linear, SamplerKind.DpmSolver2M, 10);
        Assert.Equal(new[] { 1, 2, 2, 2, 2, 2, 2, 2, 2, 1 }, dpm.Steps.Select(s => s.Order));
        Assert.Equal((0.0, 1.0, 0.0), (dpm.Steps[^1].X, dpm.Steps[^1].Data, dpm.Steps[^1].Noise)); // lands on the prediction
        Assert.All(dpm.Steps, s => Assert.Equal(0, s.Noise));
        var sde = SamplerPlan.Create(Linear, SamplerKind.DpmSolver2MSde, 10);
        Assert.All(sde.Steps.SkipLast(1), s => Assert.True(s.Noise > 0));
        var ddim = SamplerPlan.Create(Linear, SamplerKind.Ddim, 4, eta: 1);
        Assert.Equal(new[] { 750, 500, 250, 0 }, ddim.Timesteps);
        Assert.Equal((1.0, 0.0), (ddim.Steps[^1].Data, ddim.Steps[^1].Noise));
        Assert.Equal("DDIM steps must be in [1, 1000]. (Parameter 'steps')\nActual value was 0.",
                     Assert.Throws<ArgumentOutOfRangeException>(() => SamplerPlan.Create(Linear, SamplerKind.Ddim, 0)).Message.ReplaceLineEndings("\n"));
        Assert.Throws<ArgumentOutOfRangeException>(() => SamplerPlan.Create(Linear, SamplerKind.Ddim, 5, eta: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SamplerPlan.Create(Linear, SamplerKind.DpmSolver2M, 1001));
    }

    const double Mu = 0.3, Sd = 0.5;

    /// <summary>
    /// The closed-form case of SamplerConvergenceTests (Gaussian data, the Bayes-optimal model), run on the float-array
    /// scheduler: the core's coefficients alone, without TorchSharp.
    /// </summary>
    static double MaxErrorOnSpans(Objective objective, SamplerKind sampler, int steps)
    {
        const int n = 64;
        var scheduler = new SpanScheduler(Linear, sampler, objective, imageLength: n);
        scheduler.SetTimesteps(steps);
        var random = new Random(5);
        var start = new float[n];
        for (int i = 0; i < n; i++) start[i] = (float)Normal(random);
        var x = start;
        foreach (int t in scheduler.Timesteps)
        {
            double a = Linear.SqrtAlphasCumprod[t], s = Linear.SqrtOneMinusAlphasCumprod[t];
            var output = new float[n];
            for (int i = 0; i < n; i++)
            {
                double eps = s * (x[i] - a * Mu) / (a * a * Sd * Sd + s * s), x0 = (x[i] - s * eps) / a;
                output[i] = (float)(objective switch { Objective.Eps => eps, Objective.X0 => x0, _ => a * eps - s * x0 });
            }
            x = scheduler.Step(output, t, x).Prev;
        }
        int top = Linear.Timesteps - 1;
        double at = Linear.SqrtAlphasCumprod[top], st = Linear.SqrtOneMinusAlphasCumprod[top];
        return x.Select((v, i) => Math.Abs(v - ((start[i] - at * Mu) / Math.Sqrt(at * at * Sd * Sd + st * st) * Sd + Mu))).Max();
    }

    [Theory]
    [InlineData(Objective.Eps)]
    [InlineData(Objective.X0)]
    [InlineData(Objective.V)]
    public void On_spans_dpm_solver_pp_at_20_steps_lands_on_the_exact_solution(Objective objective)
    {
        double error = MaxErrorOnSpans(objective, SamplerKind.DpmSolver2M, 20);
        Assert.True(error < 0.03, $"DPM-Solver++ 20 steps: max error {error:G3}");
    }

    [Fact]
    public void On_spans_dpm_solver_pp_is_second_order_and_ddim_first_order()
    {
        double[] dpm = new[] { 20, 40, 80 }.Select(n => MaxErrorOnSpans(Objective.Eps, SamplerKind.DpmSolver2M, n)).ToArray();
        double[] ddim = new[] { 20, 40, 80 }.Select(n => MaxErrorOnSpans(Objective.Eps, SamplerKind.Ddim, n)).ToArray();
        string seen = $"DPM-Solver++ {string.Join(", ", dpm.Select(e => e.ToString("G3")))}; DDIM {string.Join(", ", ddim.Select(e => e.ToString("G3")))}";
        for (int i = 0; i + 1 < dpm.Length; i++)
        {
            Assert.True(dpm[i] / dpm[i + 1] > 3.0, seen);
            Assert.InRange(ddim[i] / ddim[i + 1], 1.5, 3.0);
        }
        Assert.True(dpm[0] < ddim[0] / 5, seen);
    }

    /// <summary>A model that answers x * 0.1 + t / 1000 and counts its calls.</summary>
    sealed class CountingModel() : nn.Module<Tensor, Tensor, Tensor>("Counting")
    {
        public int Calls;
        public override Tensor forward(Tensor x, Tensor t)
        {
            Calls++;
            using var scope = NewDisposeScope();
            return x.mul(0.1).add(t.to(x.dtype).div(1000).reshape(-1, 1, 1, 1)).MoveToOuterDisposeScope();
        }
    }

    [Theory]
    [InlineData(SamplerKind.Ddpm, 0.0)]
    [InlineData(SamplerKind.Ddim, 0.5)]
    [InlineData(SamplerKind.DpmSolver2M, 0.0)]
    [InlineData(SamplerKind.DpmSolver2MSde, 0.0)]
    public void The_scheduler_loop_draws_what_the_whole_loop_sampler_draws(SamplerKind kind, double eta)
    {
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Cosine, 50), new DiffusionOptions(Objective.V, ClipX0: true));
        using var model = new CountingModel();
        var shape = new long[] { 2, 1, 4, 4 };
        using var scope = NewDisposeScope();
        var expected = diffusion.Sample(model, shape, kind, 8, eta, new Generator(3));

        using var generator = new Generator(3);
        using var scheduler = diffusion.Scheduler(kind, eta);
        scheduler.SetTimesteps(8);
        var x = randn(shape, generator: generator);
        foreach (int t in scheduler.Timesteps)
            x = scheduler.Step(model.forward(x, full(2, t, ScalarType.Int64)), t, x, generator).Prev;
        Assert.True(expected.eq(x).all().item<bool>(), $"{kind}: the scheduler's loop differs from Sample");
    }

    [Fact]
    public void Scheduler_steps_run_in_order_and_add_noise_is_the_forward_process()
    {
        var diffusion = new GaussianDiffusion(Linear);
        using var scheduler = diffusion.Scheduler(SamplerKind.Ddim);
        using var scope = NewDisposeScope();
        var x = randn(1, 1, 2, 2);
        Assert.Equal("Call SetTimesteps before Step.", Assert.Throws<InvalidOperationException>(() => scheduler.Step(x, 999, x)).Message);
        scheduler.SetTimesteps(2);
        Assert.Equal(new[] { 500, 0 }, scheduler.Timesteps);
        Assert.Equal("Step 1 of 2 is at t = 500, not 0: step through Timesteps in order.",
                     Assert.Throws<InvalidOperationException>(() => scheduler.Step(x, 0, x)).Message);
        scheduler.Step(x, 500, x);
        scheduler.Step(x, 0, x);
        Assert.StartsWith("The chain is over: all 2 steps ran", Assert.Throws<InvalidOperationException>(() => scheduler.Step(x, 0, x)).Message);

        var noise = randn(1, 1, 2, 2);
        var expected = diffusion.QSample(x, tensor(new long[] { 321 }), noise);
        Assert.True(scheduler.AddNoise(x, noise, 321).allclose(expected, rtol: 1e-6, atol: 1e-6));
        var spans = new SpanScheduler(Linear, SamplerKind.Ddim, Objective.Eps, 4);
        Assert.Equal(expected.data<float>().ToArray(), spans.AddNoise(x.data<float>().ToArray(), noise.data<float>().ToArray(), 321), new FloatTolerance(1e-6f));
    }

    sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float value) => 0;
    }

    [Fact]
    public void Sample_reports_every_step_and_stops_within_one_step_when_cancelled()
    {
        var diffusion = new GaussianDiffusion(ScheduleMath.Tables(ScheduleKind.Linear, 30));
        using var model = new CountingModel();
        var seen = new List<(int, int)>();
        using (diffusion.Sample(model, new long[] { 1, 1, 2, 2 }, SamplerKind.DpmSolver2M, 5, progress: (done, total) => seen.Add((done, total)))) { }
        Assert.Equal(new[] { (1, 5), (2, 5), (3, 5), (4, 5), (5, 5) }, seen);

        using var cancel = new CancellationTokenSource();
        model.Calls = 0;
        Assert.Throws<OperationCanceledException>(() => diffusion.Sample(model, new long[] { 1, 1, 2, 2 }, SamplerKind.Ddpm, 0,
            progress: (done, _) => { if (done == 3) cancel.Cancel(); }, cancellationToken: cancel.Token));
        Assert.Equal(3, model.Calls); // of 30: the step after the cancel never calls the model
    }
}
