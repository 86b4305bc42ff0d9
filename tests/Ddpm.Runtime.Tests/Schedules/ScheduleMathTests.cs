using Ddpm.Schedules;

namespace Ddpm.Runtime.Tests.Schedules;

public class ScheduleMathTests
{
    [Fact]
    public void Linear_betas_are_evenly_spaced_from_start_to_end()
    {
        double[] betas = ScheduleMath.Betas(ScheduleKind.Linear, 300, 1e-4, 0.02);
        Assert.Equal(300, betas.Length);
        Assert.Equal(1e-4, betas[0], 15);
        Assert.Equal(0.02, betas[299], 15);
        Assert.Equal(1e-4 + (0.02 - 1e-4) / 299 * 150, betas[150], 15);
    }

    [Fact]
    public void Quadratic_betas_are_squares_of_a_linear_ramp_of_roots()
    {
        double[] betas = ScheduleMath.Betas(ScheduleKind.Quadratic, 3, 1e-4, 0.04);
        Assert.Equal(1e-4, betas[0], 15);
        Assert.Equal(Math.Pow((0.01 + 0.2) / 2, 2), betas[1], 15);
        Assert.Equal(0.04, betas[2], 15);
    }

    [Fact]
    public void Sigmoid_betas_are_centred_between_start_and_end()
    {
        double[] betas = ScheduleMath.Betas(ScheduleKind.Sigmoid, 3, 1e-4, 0.02);
        Assert.Equal((1e-4 + 0.02) / 2, betas[1], 15);
        Assert.Equal(1 / (1 + Math.Exp(6)) * (0.02 - 1e-4) + 1e-4, betas[0], 15);
    }

    [Fact]
    public void Cosine_betas_follow_the_squared_cosine_alpha_bar_and_are_clipped()
    {
        const int T = 1000;
        const double s = 0.008;
        static double F(double t) => Math.Pow(Math.Cos((t / T + s) / (1 + s) * Math.PI / 2), 2);
        double[] betas = ScheduleMath.Betas(ScheduleKind.Cosine, T);
        Assert.Equal(Math.Max(1 - F(1) / F(0), 1e-4), betas[0], 15);
        Assert.Equal(1 - F(500) / F(499), betas[499], 12);
        Assert.Equal(0.9999, betas[T - 1], 15); // alpha_bar reaches 0 at T: clipped
        Assert.All(betas, b => Assert.InRange(b, 0.0001, 0.9999));
        // Between unclipped steps alpha_bar follows F: alpha_bar_500 / alpha_bar_100 = F(501) / F(101).
        // (beta_0 itself is clipped up to 1e-4, so alpha_bar is not F(t+1)/F(0) exactly.)
        var tables = new ScheduleTables(betas);
        Assert.True(1 - F(1) / F(0) < 1e-4);
        Assert.Equal(F(501) / F(101), tables.AlphasCumprod[500] / tables.AlphasCumprod[100], 12);
    }

    [Fact]
    public void Derived_tables_match_their_definitions()
    {
        var tables = ScheduleMath.Tables(ScheduleKind.Linear, 300);
        double alphaBar = 1;
        for (int t = 0; t < 300; t++)
        {
            double beta = tables.Betas[t];
            double prev = alphaBar;
            alphaBar *= 1 - beta;
            Assert.Equal(1 - beta, tables.Alphas[t], 15);
            Assert.Equal(alphaBar, tables.AlphasCumprod[t], 15);
            Assert.Equal(prev, tables.AlphasCumprodPrev[t], 15);
            Assert.Equal(1 / Math.Sqrt(1 - beta), tables.SqrtRecipAlphas[t], 13);
            Assert.Equal(Math.Sqrt(alphaBar), tables.SqrtAlphasCumprod[t], 15);
            Assert.Equal(Math.Sqrt(1 - alphaBar), tables.SqrtOneMinusAlphasCumprod[t], 15);
            Assert.Equal(beta * (1 - prev) / (1 - alphaBar), tables.PosteriorVariance[t], 15);
        }
        Assert.Equal(0.0, tables.PosteriorVariance[0]); // no noise is added at the last reverse step
        Assert.Equal(1.0, tables.AlphasCumprodPrev[0]);
        // alpha_bar_299 of the tutorial's schedule, prod(1 - linspace(1e-4, 0.02, 300)), computed independently.
        Assert.Equal(0.04805842894429403, tables.AlphasCumprod[299], 14);
    }

    [Fact]
    public void Fingerprint_is_stable_and_sensitive_to_every_beta()
    {
        var a = ScheduleMath.Tables(ScheduleKind.Linear, 300);
        var b = ScheduleMath.Tables(ScheduleKind.Linear, 300);
        var c = ScheduleMath.Tables(ScheduleKind.Linear, 300, 1e-4, 0.0200001);
        Assert.Equal(a.Fingerprint, b.Fingerprint);
        Assert.NotEqual(a.Fingerprint, c.Fingerprint);
        Assert.Matches("^[0-9a-f]{16}$", a.Fingerprint);
        // FNV-1a of no data is the offset basis: pins the algorithm.
        Assert.Equal("cbf29ce484222325", ScheduleMath.Fingerprint(Array.Empty<double>()));
    }

    [Theory]
    [InlineData(ScheduleKind.Linear, 0, 1e-4, 0.02, "timesteps must be >= 1, got 0")]
    [InlineData(ScheduleKind.Linear, 10, 0.0, 0.02, "beta_start must be in (0, 1), got 0")]
    [InlineData(ScheduleKind.Linear, 10, 1e-4, 1.0, "beta_end must be in (0, 1), got 1")]
    [InlineData(ScheduleKind.Quadratic, 10, 0.02, 1e-4, "beta_start (0.02) must not exceed beta_end (0.0001)")]
    [InlineData((ScheduleKind)9, 10, 1e-4, 0.02, "unknown schedule kind 9")]
    public void Invalid_arguments_give_one_clear_error(ScheduleKind kind, int timesteps, double start, double end, string message)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ScheduleMath.Betas(kind, timesteps, start, end));
        Assert.Contains(message, error.Message);
    }
}
