import { accessSync, constants, mkdirSync } from 'node:fs';
import { DurationError, parseDuration } from '../actors/time.js';

/** A CLI-level bad input: printed as one paragraph, exit code 2. */
export class UsageError extends Error {}

/**
 * Flag readers of the run, sweep and worker commands. Each throws {@link UsageError} (exit 2, one
 * paragraph naming the flag, what was expected and what was found).
 */

/**
 * @example
 * parseInteger('--threads', '2', 1) // 2
 */
export function parseInteger(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${flag}: expected an integer ≥ ${min}, found "${text}".`);
  return n;
}

/**
 * A positive duration (`2ms`, `30s`) or an integer number of picoseconds.
 *
 * @example
 * parseTimeFlag('--until', '20us') // 20_000_000
 */
export function parseTimeFlag(flag: string, text: string): number {
  try {
    const t = parseDuration(/^\d+$/.test(text) ? Number(text) : text);
    if (t <= 0) throw new DurationError('a positive duration');
    return t;
  } catch (err) {
    throw new UsageError(
      `${flag}: expected ${err instanceof Error ? err.message : 'a duration such as 2ms'}.`,
    );
  }
}

/** `--out` is checked before anything runs, so a bad directory costs no simulation (exit 2). */
export function prepareOutDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new UsageError(`--out ${dir}: expected a writable directory, found ${reason}.`);
  }
}
