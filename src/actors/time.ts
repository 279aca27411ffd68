/**
 * Simulated time. The kernel's unit is the picosecond, held in a JS number that is always an
 * integer: fine enough for single cycles at any clock up to 1 THz, and exact up to 2^53 ps
 * (about 2.5 simulated hours), far beyond any scenario. Never a float, never wall-clock time.
 *
 * @example
 * parseDuration('3us') // 3_000_000
 * cyclesToPs(1350, 3_000_000_000) // 450_000 (1,350 cycles at 3 GHz)
 */
export type Time = number;

export const PS = 1;
export const NS = 1_000;
export const US = 1_000_000;
export const MS = 1_000_000_000;
export const S = 1_000_000_000_000;

/** Largest time the kernel accepts; beyond it integer arithmetic on doubles stops being exact. */
export const TIME_MAX: Time = Number.MAX_SAFE_INTEGER;

const UNITS: Record<string, number> = { ps: PS, ns: NS, us: US, µs: US, ms: MS, s: S };

/** Thrown for a duration string that cannot be read; the scenario loader turns it into exit code 2. */
export class DurationError extends Error {}

/**
 * Reads `250ns`, `3us`, `2.5ms`, `1s` or an integer number of picoseconds. Fractions are allowed
 * in the text only when the result is a whole number of picoseconds.
 */
export function parseDuration(text: string | number): Time {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) {
      throw new DurationError(`a non-negative integer number of picoseconds, found ${text}`);
    }
    return text;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ps|ns|us|µs|ms|s)?\s*$/.exec(text);
  if (!m) throw new DurationError(`a duration such as 250ns, 3us, 2ms or 1s, found "${text}"`);
  const unit = UNITS[m[2] ?? 'ps'] ?? PS;
  const [whole, frac = ''] = (m[1] ?? '0').split('.');
  // Integer arithmetic on the decimal digits so that "0.1us" is exactly 100_000 ps.
  const scale = 10 ** frac.length;
  const numerator = BigInt(whole ?? '0') * BigInt(scale) + BigInt(frac || '0');
  const ps = (numerator * BigInt(unit)) / BigInt(scale);
  if ((numerator * BigInt(unit)) % BigInt(scale) !== 0n) {
    throw new DurationError(`a whole number of picoseconds, found "${text}"`);
  }
  if (ps > BigInt(TIME_MAX)) throw new DurationError(`a duration below ${TIME_MAX} ps, found "${text}"`);
  return Number(ps);
}

/** Cycles at a clock in Hz, rounded to the nearest picosecond (integer arithmetic). */
export function cyclesToPs(cycles: number, clockHz: number): Time {
  const num = BigInt(Math.round(cycles)) * BigInt(S);
  const hz = BigInt(clockHz);
  return Number((num + hz / 2n) / hz);
}

/** Whole nanoseconds of a time, for reports (truncated, as the report's `atNs` fields are). */
export function toNs(t: Time): number {
  return Math.floor(t / NS);
}

/** Human form for summaries: picks the largest unit that keeps at least one integer digit. */
export function formatDuration(t: Time): string {
  if (t >= S) return `${trim(t / S)}s`;
  if (t >= MS) return `${trim(t / MS)}ms`;
  if (t >= US) return `${trim(t / US)}us`;
  if (t >= NS) return `${trim(t / NS)}ns`;
  return `${t}ps`;
}

function trim(x: number): string {
  return Number(x.toFixed(3)).toString();
}
