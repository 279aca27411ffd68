import { z } from 'zod';

/**
 * A probability as an integer ratio. Decisions in the simulator draw integers only
 * (architecture.md: "probabilities as integer ratios"), so a ratio never becomes a float.
 */
export interface Ratio {
  /** Numerator, 0 ≤ num ≤ den. */
  num: number;
  /** Denominator, ≥ 1. Always reduced with `num` (0 is 0/1). */
  den: number;
}

const RATIO = 'a ratio in [0, 1]: a number with at most 6 decimals (0.25) or "n/d" (1/3)';
const DECIMALS = 1_000_000;

/**
 * Reads `0`, `0.25`, `1`, or `"1/3"` into a reduced {@link Ratio}. Numbers may carry at most six
 * decimals, which is what makes the conversion to an integer ratio exact.
 *
 * @example
 * RatioSchema.parse(0.25) // { num: 1, den: 4 }
 * RatioSchema.parse('2/6') // { num: 1, den: 3 }
 */
export const RatioSchema = z
  .union([z.number(), z.string()], { error: RATIO })
  .transform((value, ctx): Ratio => {
    const ratio = typeof value === 'number' ? fromDecimal(value) : fromFraction(value);
    if (!ratio) {
      ctx.issues.push({ code: 'custom', input: value, message: RATIO });
      return z.NEVER;
    }
    return ratio;
  })
  .meta({ description: 'Ratio in [0, 1]: a number with at most 6 decimals, or "n/d".' });

function fromDecimal(x: number): Ratio | undefined {
  if (!Number.isFinite(x) || x < 0 || x > 1) return undefined;
  // toFixed(6) round-trips exactly when x has at most six decimals; 1e-7 does not.
  if (Number(x.toFixed(6)) !== x) return undefined;
  return reduce(Math.round(x * DECIMALS), DECIMALS);
}

function fromFraction(text: string): Ratio | undefined {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const num = Number(m[1]);
  const den = Number(m[2]);
  if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || den === 0 || num > den) return undefined;
  return reduce(num, den);
}

function reduce(num: number, den: number): Ratio {
  if (num === 0) return { num: 0, den: 1 };
  let a = num;
  let b = den;
  while (b !== 0) [a, b] = [b, a % b];
  return { num: num / a, den: den / a };
}
