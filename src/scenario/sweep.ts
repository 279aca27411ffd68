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
    .max(LIMITS.matrixValues, { error: `at most ${LIMITS.matrixValues} values` }),
  { error: ifWrongType('a mapping from dotted key to a list of values') },
);

const SEEDS = `a seed range "A..B" (B ≥ A, at most ${LIMITS.seedsPerRange} seeds) or a list of seeds`;

/**
 * `seeds:` — `"A..B"` (inclusive) or a list of non-negative integers, resolved to the list.
 *
 * @example
 * SeedsSchema.parse('3..5') // [3, 4, 5]
 */
export const SeedsSchema = z
  .union([z.string(), z.array(z.int().min(0)).min(1).max(LIMITS.seedsPerRange)], { error: SEEDS })
  .transform((value, ctx): number[] => {
    if (typeof value !== 'string') return value;
    const seeds = seedRange(value);
    if (seeds) return seeds;
    ctx.issues.push({ code: 'custom', input: value, message: SEEDS });
    return z.NEVER;
  });

/**
 * Reads the CLI's `--seeds A..B`, with the same rules as a scenario's `seeds:`.
 *
 * @throws ScenarioError (exit code 2) naming `--seeds`
 * @example
 * parseSeedRange('1..4') // [1, 2, 3, 4]
 */
export function parseSeedRange(text: string): number[] {
  const seeds = seedRange(text);
  if (!seeds)
    throw new ScenarioError({ file: '--seeds', path: '', expected: SEEDS, found: JSON.stringify(text) });
  return seeds;
}

function seedRange(text: string): number[] | undefined {
  const m = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = Number(m[2]);
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || to < from) return undefined;
  if (to - from + 1 > LIMITS.seedsPerRange) return undefined;
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
