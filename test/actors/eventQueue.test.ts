import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../src/actors/eventQueue.js';
import { compareKeys, type Envelope } from '../../src/actors/types.js';

const envArb = fc.record({
  t: fc.integer({ min: 0, max: 50 }),
  p: fc.constantFrom(10, 20, 30),
  src: fc.integer({ min: 0, max: 5 }),
  seq: fc.nat(1000),
});

describe('EventQueue', () => {
  it('pops every pushed event in key order (a total order)', () => {
    fc.assert(
      fc.property(fc.array(envArb, { maxLength: 300 }), (raw) => {
        // Keys are unique by construction in the kernel: (src, seq) never repeats.
        const seen = new Set<string>();
        const events: Envelope[] = raw
          .filter((e) => !seen.has(`${e.src}:${e.seq}`) && seen.add(`${e.src}:${e.seq}`))
          .map((e) => ({ ...e, dst: 0, type: 'x', data: null }));
        const q = new EventQueue();
        for (const e of events) q.push(e);
        const out: Envelope[] = [];
        while (q.size > 0) out.push(q.pop()!);
        expect(out).toHaveLength(events.length);
        for (let i = 1; i < out.length; i++) expect(compareKeys(out[i - 1]!, out[i]!)).toBeLessThan(0);
      }),
    );
  });

  it('orders interleaved pushes and pops', () => {
    const q = new EventQueue();
    const mk = (t: number, seq: number): Envelope => ({
      t,
      p: 20,
      src: 0,
      seq,
      dst: 0,
      type: 'x',
      data: null,
    });
    q.push(mk(5, 0));
    q.push(mk(1, 1));
    expect(q.pop()!.t).toBe(1);
    q.push(mk(3, 2));
    expect(q.peekTime()).toBe(3);
    expect(q.pop()!.t).toBe(3);
    expect(q.pop()!.t).toBe(5);
    expect(q.pop()).toBeUndefined();
    expect(q.peekTime()).toBe(Number.POSITIVE_INFINITY);
  });
});
