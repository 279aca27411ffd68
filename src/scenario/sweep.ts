import { z } from 'zod';
import { ScenarioError } from './errors.js';
import { LIMITS } from './limits.js';
import { ifWrongType } from './numbers.js';

/** A value a `matrix` entry may take: what `--set key=value` could also give. */
export type MatrixValue = string | number | boolean;

/**
 * `matrix:` — lists of values per dotted key; `run` on such a scenario sweeps their cross product
 * (interface.md). That each key names a field is checked by the loader, which knows the schema.
 *
 * @example
 * MatrixSchema.parse({ 'host.policy': ['naive', 'linux-7.0'] })
 */
export const MatrixSchema = z.record(
  z.string().min(1, { error: 'a dotted key such as host.policy' }),
  z
    .array(
      z.union([z.string(), z.number(), z.boolean()], { error: 'a scalar (string, number, true/false)' }),
      {
        error: 'a list of values',
      },
    )
    .min(1, { error: 'a non-empty list of values' })
    .max(LIMITS.matrixValues, { error: `at most ${LIMITS.matrixValues} values` })
    // A value twice would run every variant with it twice and count them twice, as a seed would.
    .refine((values) => new Set(values).size === values.length, {
      error: (issue) =>
        `each value once (found ${JSON.stringify(firstRepeated(issue.input as unknown[]))} twice)`,
    }),
  { error: ifWrongType('a mapping from dotted key to a list of values') },
);

/** The first value that occurs a second time in `values`. */
export function firstRepeated<T>(values: readonly T[]): T | undefined {
  const seen = new Set<T>();
  for (const v of values) {
    if (seen.has(v)) return v;
    seen.add(v);
  }
  return undefined;
}

/** What `--seeds` takes; a scenario's `seeds:` may also be a YAML list. */
const SEED_STRING = `seeds as "A..B" (B ≥ A), "N" or a comma-separated mix such as "1..4,7" (at most ${LIMITS.seedsPerRange} seeds, none twice)`;
const SEEDS = `${SEED_STRING}, or a list of seeds`;

/**
 * `seeds:` — `"A..B"` (inclusive), `"N"`, a comma-separated mix (`"1..4,7"`), or a list of
 * non-negative integers, resolved to the list.
 *
 * @example
 * SeedsSchema.parse('3..5') // [3, 4, 5]
 */
export const SeedsSchema = z
  .union([z.string(), z.array(z.int().min(0)).min(1).max(LIMITS.seedsPerRange)], { error: SEEDS })
  .transform((value, ctx): number[] => {
    const seeds = typeof value === 'string' ? seedRange(value) : value;
    // A seed twice would run the same simulation twice and count it twice in the table.
    if (seeds && new Set(seeds).size === seeds.length) return seeds;
    ctx.issues.push({ code: 'custom', input: value, message: SEEDS });
    return z.NEVER;
  });

/**
 * Reads the CLI's `--seeds` (`A..B`, `N`, or a comma-separated mix such as `1..4,7`), with the
 * same rules as a scenario's `seeds:` string.
 *
 * @throws ScenarioError (exit code 2) naming `--seeds`
 * @example
 * parseSeedRange('1..4') // [1, 2, 3, 4]
 * parseSeedRange('1..3,7') // [1, 2, 3, 7]
 */
export function parseSeedRange(text: string): number[] {
  const seeds = seedRange(text);
  if (!seeds)
    throw new ScenarioError({
      file: '--seeds',
      path: '',
      expected: SEED_STRING,
      found: JSON.stringify(text),
    });
  return seeds;
}

/** The seeds a `--seeds` / `seeds:` string names, in its order; undefined if it is malformed. */
function seedRange(text: string): number[] | undefined {
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || to < from) return undefined;
    if (seeds.length + (to - from + 1) > LIMITS.seedsPerRange) return undefined;
    for (let seed = from; seed <= to; seed++) seeds.push(seed);
  }
  return new Set(seeds).size === seeds.length ? seeds : undefined;
}
