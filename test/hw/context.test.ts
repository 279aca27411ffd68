import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeContext,
  encodeContext,
  KERNEL_PROCESS,
  type RapContext,
  STUFF_PROCESS,
  sameView,
} from '../../src/hw/context.js';

const ctxArb: fc.Arbitrary<RapContext> = fc.record({
  world: fc.constantFrom<'host' | 'guest'>('host', 'guest'),
  level: fc.integer({ min: 0, max: 3 }),
  vm: fc.integer({ min: 0, max: 255 }),
  view: fc.integer({ min: 0, max: 1023 }),
  // (the encoding holds views up to 4095; see the extremes below)
  process: fc.integer({ min: 0, max: 4095 }),
});

describe('context encoding', () => {
  it('decode(encode(c)) = c over the valid ranges (property)', () => {
    fc.assert(
      fc.property(ctxArb, (c) => {
        expect(decodeContext(encodeContext(c))).toEqual(c);
      }),
      { numRuns: 1000 },
    );
  });

  it('encodes into an exact non-negative integer below 2^35 (the bound context.ts documents)', () => {
    fc.assert(
      fc.property(ctxArb, (c) => {
        const x = encodeContext(c);
        expect(Number.isSafeInteger(x)).toBe(true);
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThan(2 ** 35);
      }),
    );
  });

  it('is injective: distinct contexts never share a code (property)', () => {
    fc.assert(
      fc.property(ctxArb, ctxArb, (a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        expect(encodeContext(a)).not.toBe(encodeContext(b));
      }),
      { numRuns: 1000 },
    );
  });

  it('round-trips the extremes', () => {
    for (const c of [
      { world: 'host', level: 0, vm: 0, view: 0, process: 0 },
      { world: 'guest', level: 3, vm: 255, view: 1023, process: 4095 },
      { world: 'guest', level: 3, vm: 255, view: 4095, process: 4095 },
      { world: 'host', level: 0, vm: 0, view: 7, process: KERNEL_PROCESS },
      { world: 'guest', level: 2, vm: 1, view: 3, process: STUFF_PROCESS },
    ] as RapContext[]) {
      expect(decodeContext(encodeContext(c))).toEqual(c);
    }
  });

  it('sameView ignores the process only', () => {
    fc.assert(
      fc.property(ctxArb, fc.integer({ min: 0, max: 4095 }), (c, p) => {
        expect(sameView(encodeContext(c), encodeContext({ ...c, process: p }))).toBe(true);
      }),
    );
    const base: RapContext = { world: 'host', level: 0, vm: 0, view: 1, process: 1 };
    for (const diff of [{ world: 'guest' }, { level: 1 }, { vm: 1 }, { view: 2 }] as Partial<RapContext>[]) {
      expect(sameView(encodeContext(base), encodeContext({ ...base, ...diff }))).toBe(false);
    }
  });
});
