// Part of Ddpm.Core (public) and compiled into the generator (internal), so the tables the generator bakes into code,
// the ones the runtime computes and the ones Ddpm.Onnx derives from a model file are the same numbers.
using System;
#if !DDPM_GENERATOR
using Ddpm.Specs;
#endif

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Schedules
#endif
{
    /// <summary>The variance schedule of the forward process and every quantity derived from it, in float64.</summary>
#if DDPM_GENERATOR
    internal sealed class ScheduleTables
#else
    public sealed class ScheduleTables
#endif
    {
        /// <summary>Computes every table from the betas, in float64.</summary>
        /// <param name="betas">beta_t for t = 0..T-1, each in (0, 1); kept, not copied.</param>
        public ScheduleTables(double[] betas)
        {
            int count = betas.Length;
            Betas = betas;
            Alphas = new double[count];
            AlphasCumprod = new double[count];
            AlphasCumprodPrev = new double[count];
            SqrtRecipAlphas = new double[count];
            SqrtAlphasCumprod = new double[count];
            SqrtOneMinusAlphasCumprod = new double[count];
            PosteriorVariance = new double[count];
            double product = 1.0;
            for (int t = 0; t < count; t++)
            {
                Alphas[t] = 1.0 - betas[t];
                AlphasCumprodPrev[t] = product;
                product *= Alphas[t];
                AlphasCumprod[t] = product;
                SqrtRecipAlphas[t] = Math.Sqrt(1.0 / Alphas[t]);
                SqrtAlphasCumprod[t] = Math.Sqrt(product);
                SqrtOneMinusAlphasCumprod[t] = Math.Sqrt(1.0 - product);
                // Variance of q(x_{t-1} | x_t, x_0), eq. (7) of Ho et al. 2020.
                PosteriorVariance[t] = betas[t] * (1.0 - AlphasCumprodPrev[t]) / (1.0 - product);
            }
            Fingerprint = ScheduleMath.Fingerprint(betas);
        }

        /// <summary>Tables computed elsewhere (by the source generator, at compile time); nothing is recomputed.</summary>
        public ScheduleTables(double[] betas, double[] alphas, double[] alphasCumprod, double[] alphasCumprodPrev,
                              double[] sqrtRecipAlphas, double[] sqrtAlphasCumprod, double[] sqrtOneMinusAlphasCumprod,
                              double[] posteriorVariance, string fingerprint)
        {
            foreach (double[] table in new[] { alphas, alphasCumprod, alphasCumprodPrev, sqrtRecipAlphas, sqrtAlphasCumprod, sqrtOneMinusAlphasCumprod, posteriorVariance })
                if (table.Length != betas.Length)
                    throw new ArgumentException($"Every schedule table must have {betas.Length} entries, one has {table.Length}.", nameof(betas));
            Betas = betas;
            Alphas = alphas;
            AlphasCumprod = alphasCumprod;
            AlphasCumprodPrev = alphasCumprodPrev;
            SqrtRecipAlphas = sqrtRecipAlphas;
            SqrtAlphasCumprod = sqrtAlphasCumprod;
            SqrtOneMinusAlphasCumprod = sqrtOneMinusAlphasCumprod;
            PosteriorVariance = posteriorVariance;
            Fingerprint = fingerprint;
        }

        /// <summary>The number of diffusion steps T (the length of every table).</summary>
        public int Timesteps => Betas.Length;
        /// <summary>beta_t, the variance of the noise added at step t (q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)).</summary>
        public double[] Betas { get; }
        /// <summary>alpha_t = 1 - beta_t.</summary>
        public double[] Alphas { get; }
        /// <summary>alpha_bar_t = prod_{s &lt;= t} alpha_s.</summary>
        public double[] AlphasCumprod { get; }
        /// <summary>alpha_bar_{t-1}, with alpha_bar_{-1} = 1.</summary>
        public double[] AlphasCumprodPrev { get; }
        /// <summary>1 / sqrt(alpha_t), the scale of the posterior mean (eq. 11 of Ho et al. 2020).</summary>
        public double[] SqrtRecipAlphas { get; }
        /// <summary>sqrt(alpha_bar_t): the signal scale of x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (eq. 4 of Ho et al. 2020).</summary>
        public double[] SqrtAlphasCumprod { get; }
        /// <summary>sqrt(1 - alpha_bar_t): the noise scale of x_t (eq. 4 of Ho et al. 2020).</summary>
        public double[] SqrtOneMinusAlphasCumprod { get; }
        /// <summary>beta~_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), the variance of q(x_{t-1} | x_t, x_0) (eq. 7 of Ho et al. 2020); 0 at t = 0.</summary>
        public double[] PosteriorVariance { get; }
        /// <summary>Stable hash of the betas; checkpoints record it so they are sampled under their own schedule.</summary>
        public string Fingerprint { get; }
    }

    /// <summary>Closed-form beta schedules, computed in double precision.</summary>
#if DDPM_GENERATOR
    internal static class ScheduleMath
#else
    public static class ScheduleMath
#endif
    {
        /// <summary>The offset s of the cosine schedule (Nichol and Dhariwal 2021), which keeps beta from being tiny near t = 0.</summary>
        public const double CosineOffset = 0.008;
        /// <summary>The smallest beta the cosine schedule produces (its betas are clipped to [MinBeta, MaxBeta]).</summary>
        public const double MinBeta = 0.0001;
        /// <summary>The largest beta the cosine schedule produces; keeps alpha_t away from 0 near t = T - 1.</summary>
        public const double MaxBeta = 0.9999;

        /// <summary>Returns null when the arguments are valid, else what is wrong.</summary>
        public static string? Check(ScheduleKind kind, int timesteps, double betaStart, double betaEnd)
        {
            if (!Enum.IsDefined(typeof(ScheduleKind), kind))
                return $"unknown schedule kind {(int)kind}; use Linear, Cosine, Quadratic or Sigmoid";
            if (!ScheduleRules.Timesteps.Allows(timesteps))
                return $"timesteps must be {ScheduleRules.Timesteps.Text}, got {timesteps}";
            if (kind == ScheduleKind.Cosine)
                return null; // the cosine schedule has no beta range
            if (!ScheduleRules.Beta.Allows(betaStart))
                return $"beta_start must be {ScheduleRules.Beta.Text}, got {R(betaStart)}";
            if (!ScheduleRules.Beta.Allows(betaEnd))
                return $"beta_end must be {ScheduleRules.Beta.Text}, got {R(betaEnd)}";
            if (!ScheduleRules.BetasGrow(betaStart, betaEnd))
                return $"beta_start ({R(betaStart)}) must not exceed beta_end ({R(betaEnd)})";
            return null;
        }

        private static string R(double value) => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>The betas of a schedule, as <see cref="ScheduleKind"/> describes each kind.</summary>
        /// <param name="kind">How the betas grow.</param>
        /// <param name="timesteps">The number of steps T (&gt;= 1).</param>
        /// <param name="betaStart">The first beta, in (0, 1); not used by the cosine schedule.</param>
        /// <param name="betaEnd">The last beta, in (0, 1) and not below <paramref name="betaStart"/>; not used by the cosine schedule.</param>
        /// <returns>T betas, for t = 0..T-1.</returns>
        /// <exception cref="ArgumentOutOfRangeException">The arguments break a rule (<see cref="Check"/> says which).</exception>
        public static double[] Betas(ScheduleKind kind, int timesteps, double betaStart = 1e-4, double betaEnd = 0.02)
        {
            string? problem = Check(kind, timesteps, betaStart, betaEnd);
            if (problem != null)
                throw new ArgumentOutOfRangeException(nameof(timesteps), problem);
            switch (kind)
            {
                case ScheduleKind.Linear:
                    return Linspace(betaStart, betaEnd, timesteps);
                case ScheduleKind.Quadratic:
                {
                    double[] roots = Linspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), timesteps);
                    for (int i = 0; i < roots.Length; i++) roots[i] *= roots[i];
                    return roots;
                }
                case ScheduleKind.Sigmoid:
                {
                    double[] x = Linspace(-6, 6, timesteps);
                    for (int i = 0; i < x.Length; i++)
                        x[i] = 1.0 / (1.0 + Math.Exp(-x[i])) * (betaEnd - betaStart) + betaStart;
                    return x;
                }
                default: // Cosine: alpha_bar(t) = cos^2(((t/T) + s) / (1 + s) * pi/2), normalised by alpha_bar(0)
                {
                    double f0 = CosineAlphaBar(0, timesteps);
                    double[] betas = new double[timesteps];
                    for (int t = 0; t < timesteps; t++)
                    {
                        double beta = 1.0 - (CosineAlphaBar(t + 1, timesteps) / f0) / (CosineAlphaBar(t, timesteps) / f0);
                        betas[t] = Math.Min(Math.Max(beta, MinBeta), MaxBeta);
                    }
                    return betas;
                }
            }
        }

        /// <summary>The betas of <see cref="Betas"/> with all the tables derived from them.</summary>
        /// <param name="kind">How the betas grow.</param>
        /// <param name="timesteps">The number of steps T (&gt;= 1).</param>
        /// <param name="betaStart">The first beta; not used by the cosine schedule.</param>
        /// <param name="betaEnd">The last beta; not used by the cosine schedule.</param>
        /// <exception cref="ArgumentOutOfRangeException">The arguments break a rule (<see cref="Check"/> says which).</exception>
        public static ScheduleTables Tables(ScheduleKind kind, int timesteps, double betaStart = 1e-4, double betaEnd = 0.02) =>
            new ScheduleTables(Betas(kind, timesteps, betaStart, betaEnd));

        static double CosineAlphaBar(int t, int timesteps)
        {
            double c = Math.Cos(((double)t / timesteps + CosineOffset) / (1 + CosineOffset) * Math.PI * 0.5);
            return c * c;
        }

        /// <summary>count evenly spaced values from start to end inclusive, like torch.linspace.</summary>
        public static double[] Linspace(double start, double end, int count)
        {
            double[] values = new double[count];
            if (count == 1) { values[0] = start; return values; }
            double step = (end - start) / (count - 1);
            for (int i = 0; i < count; i++) values[i] = start + step * i;
            values[count - 1] = end;
            return values;
        }

        /// <summary>FNV-1a (64-bit) over the IEEE-754 bits of the betas, as 16 hex digits.</summary>
        public static string Fingerprint(double[] betas)
        {
            const ulong offset = 14695981039346656037UL, prime = 1099511628211UL;
            ulong hash = offset;
            foreach (double beta in betas)
            {
                ulong bits = (ulong)BitConverter.DoubleToInt64Bits(beta);
                for (int b = 0; b < 8; b++)
                {
                    hash ^= (bits >> (8 * b)) & 0xff;
                    hash *= prime;
                }
            }
            return hash.ToString("x16");
        }
    }
}
