import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../../src/scenario/errors.js';
import { LIMITS } from '../../src/scenario/limits.js';
import { parseSeedRange, SeedsSchema } from '../../src/scenario/sweep.js';

/** `--seeds` and a scenario's `seeds:` (src/scenario/sweep.ts): ranges, single seeds, and mixes. */
describe('seeds', () => {
  it('reads a range, a single seed, and a comma-separated mix, in the order given', () => {
    expect(parseSeedRange('1..4')).toEqual([1, 2, 3, 4]);
    expect(parseSeedRange('7')).toEqual([7]);
    expect(parseSeedRange('1..3,7')).toEqual([1, 2, 3, 7]);
    expect(parseSeedRange(' 9 , 2..3 ')).toEqual([9, 2, 3]);
    expect(SeedsSchema.parse('5,0')).toEqual([5, 0]);
    expect(SeedsSchema.parse([4, 2])).toEqual([4, 2]);
  });

  it('refuses a backwards range, a seed twice, empty parts, words and too many seeds, naming --seeds', () => {
    const tooMany = `1..${LIMITS.seedsPerRange},${LIMITS.seedsPerRange + 1}`;
    for (const bad of ['4..1', '1,1', '1..3,2', '1,,2', '', 'a', '1..', '-1', tooMany]) {
      let caught: unknown;
      try {
        parseSeedRange(bad);
      } catch (e) {
        caught = e;
      }
      expect(caught, bad).toBeInstanceOf(ScenarioError);
      expect((caught as ScenarioError).message, bad).toMatch(/^--seeds: expected seeds as "A\.\.B"/);
    }
    expect(SeedsSchema.safeParse([3, 3]).success).toBe(false);
    expect(SeedsSchema.safeParse('2,2').success).toBe(false);
  });
});
