import { z } from 'zod';
import { DurationError, parseDuration, type Time } from '../actors/time.js';

const DURATION = 'a duration such as 250ns, 3us, 2ms or 1s, or an integer number of picoseconds';

/**
 * A scenario time: a string with a unit (`250ns`, `3us`, `2ms`, `1s`) or an integer number of
 * picoseconds (the kernel's unit), resolved to {@link Time}. The reading itself is
 * `parseDuration`'s, so the CLI's `--until` and the scenario file can never disagree.
 *
 * @example
 * DurationSchema.parse('3us') // 3_000_000
 */
export const DurationSchema = z
  .union([z.string(), z.int().min(0)], { error: DURATION })
  .transform((text, ctx): Time => {
    try {
      return parseDuration(text);
    } catch (e) {
      if (!(e instanceof DurationError)) throw e;
      ctx.issues.push({ code: 'custom', input: text, message: expectedPart(e.message) });
      return z.NEVER;
    }
  })
  .meta({ id: 'Duration', description: 'A time: 250ns, 3us, 2ms, 1s, or an integer number of picoseconds.' });

/**
 * A duration with a default written the way a user would write it, so the JSON Schema shows
 * `"default": "2ms"` rather than a picosecond count.
 *
 * @example
 * durationOr('50us').parse(undefined) // 50_000_000
 */
export function durationOr(text: string) {
  return DurationSchema.prefault(text);
}

/** A duration that must be longer than zero (a run of 0 ps simulates nothing). */
export const PositiveDurationSchema = DurationSchema.refine((t) => t > 0, {
  error: 'a duration longer than 0',
});

/**
 * `DurationError` messages read "<expected>, found <text>"; the scenario error reports the found
 * value itself, from the input, so only the expectation is kept here.
 */
function expectedPart(message: string): string {
  const at = message.lastIndexOf(', found ');
  return at > 0 ? message.slice(0, at) : message;
}
