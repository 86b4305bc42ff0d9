// Spec core: the ranges of numeric settings. Part of Ddpm.Core (public) and compiled into the generator (internal),
// so the rules are written once.
using System;
using System.Globalization;

#if DDPM_GENERATOR
namespace Ddpm.Generators.SpecCore
#else
namespace Ddpm.Specs
#endif
{
    /// <summary>The allowed range of a numeric setting, with its wording in messages ("> 0", "in [0, 1)", ">= 2").</summary>
#if DDPM_GENERATOR
    internal sealed class NumberRange
#else
    public sealed class NumberRange
#endif
    {
        private readonly Func<double, bool> allows;

        private NumberRange(string text, Func<double, bool> allows)
        {
            Text = text;
            this.allows = allows;
        }

        /// <summary>How the range reads in a message, after "must be".</summary>
        public string Text { get; }

        /// <summary>True for finite values inside the range (no setting takes NaN or an infinity).</summary>
        public bool Allows(double value) => !double.IsNaN(value) && !double.IsInfinity(value) && allows(value);

        /// <summary>Strictly above zero ("&gt; 0").</summary>
        public static readonly NumberRange Positive = new NumberRange("> 0", v => v > 0);
        /// <summary>Zero or above ("&gt;= 0").</summary>
        public static readonly NumberRange NonNegative = new NumberRange(">= 0", v => v >= 0);
        /// <summary>From 0 inclusive to 1 exclusive ("in [0, 1)").</summary>
        public static readonly NumberRange UnitOpenAbove = new NumberRange("in [0, 1)", v => v >= 0 && v < 1);
        /// <summary>Strictly between 0 and 1 ("in (0, 1)").</summary>
        public static readonly NumberRange OpenUnit = new NumberRange("in (0, 1)", v => v > 0 && v < 1);

        /// <summary>From <paramref name="minimum"/> to <paramref name="maximum"/>, both included ("in [a, b]").</summary>
        public static NumberRange Between(double minimum, double maximum) =>
            new NumberRange("in [" + minimum.ToString("R", CultureInfo.InvariantCulture) + ", " + maximum.ToString("R", CultureInfo.InvariantCulture) + "]",
                            v => v >= minimum && v <= maximum);

        /// <summary>Whole numbers from <paramref name="minimum"/> on.</summary>
        public static NumberRange AtLeast(int minimum) =>
            new NumberRange(">= " + minimum.ToString(CultureInfo.InvariantCulture), v => v >= minimum);
    }
}
