import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rap } from '../../src/hw/rap.js';

/** Pushes `addrs` with distinct metadata derived from the address. */
function pushAll(rap: Rap, addrs: number[]): void {
  for (const a of addrs) rap.push(a, a + 1, a + 2, a * 10, false);
}

describe('Rap', () => {
  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new Rap(0)).toThrow(/capacity/);
    expect(() => new Rap(-1)).toThrow(/capacity/);
    expect(() => new Rap(2.5)).toThrow(/capacity/);
  });

  it('pops in LIFO order and returns the slot of the entry used', () => {
    const rap = new Rap(8);
    pushAll(rap, [0x10, 0x20, 0x30]);
    expect(rap.occupancy).toBe(3);
    const order: number[] = [];
    for (const actual of [0x30, 0x20, 0x10]) {
      const slot = rap.pop(actual);
      expect(slot).toBeGreaterThanOrEqual(0);
      order.push(rap.addr[slot]!);
    }
    expect(order).toEqual([0x30, 0x20, 0x10]);
    expect(rap.occupancy).toBe(0);
  });

  it('keeps each entry’s pusher metadata in the slot the pop returns', () => {
    const rap = new Rap(4);
    rap.push(0x100, 7, 3, 1234, false);
    rap.push(-1, 9, 4, 5678, true);
    const s1 = rap.pop(0x999);
    expect([rap.addr[s1], rap.ctx[s1], rap.epoch[s1], rap.pushedAt[s1], rap.stuff[s1]]).toEqual([
      -1, 9, 4, 5678, 1,
    ]);
    const s0 = rap.pop(0x100);
    expect([rap.addr[s0], rap.ctx[s0], rap.epoch[s0], rap.pushedAt[s0], rap.stuff[s0]]).toEqual([
      0x100, 7, 3, 1234, 0,
    ]);
  });

  it('counts a RET whose target matches the entry as predicted, otherwise mispredicted', () => {
    const rap = new Rap(4);
    pushAll(rap, [1, 2, 3]);
    rap.pop(3); // predicted
    rap.pop(99); // mispredicted (entry 2 used anyway)
    rap.pop(1); // predicted
    expect(rap.stats).toMatchObject({ returns: 3, predicted: 2, mispredicted: 1, underflows: 0, pushes: 3 });
  });

  it('counts a RET on an empty RAP as an underflow, uses no entry, and counts no prediction', () => {
    const rap = new Rap(4);
    expect(rap.pop(5)).toBe(-1);
    pushAll(rap, [5]);
    rap.pop(5);
    expect(rap.pop(5)).toBe(-1);
    expect(rap.stats).toMatchObject({ returns: 3, predicted: 1, mispredicted: 0, underflows: 2 });
  });

  it('overwrites the oldest entry when full (circular) and counts each overwrite as an overflow', () => {
    const rap = new Rap(3);
    pushAll(rap, [1, 2, 3]);
    expect(rap.stats.overflows).toBe(0);
    pushAll(rap, [4, 5]);
    expect(rap.stats.overflows).toBe(2);
    expect(rap.stats.pushes).toBe(5);
    expect(rap.occupancy).toBe(3);
    expect(rap.snapshot().map((e) => e.addr)).toEqual([3, 4, 5]);
    const popped = [rap.pop(0), rap.pop(0), rap.pop(0)].map((s) => rap.addr[s]);
    expect(popped).toEqual([5, 4, 3]);
    // The overwritten entries 1 and 2 are gone: the next RET underflows.
    expect(rap.pop(0)).toBe(-1);
  });

  it('clear() drops every valid entry, reports how many, and the next RET underflows', () => {
    const rap = new Rap(4);
    pushAll(rap, [1, 2, 3]);
    expect(rap.clear()).toBe(3);
    expect(rap.occupancy).toBe(0);
    expect(rap.snapshot()).toEqual([]);
    expect(rap.pop(3)).toBe(-1);
    expect(rap.stats.underflows).toBe(1);
    expect(rap.clear()).toBe(0);
    // Pushing after a clear works from an empty stack.
    pushAll(rap, [9]);
    expect(rap.snapshot().map((e) => e.addr)).toEqual([9]);
  });

  it('snapshot() lists valid entries oldest → newest with their metadata, across the wrap-around', () => {
    const rap = new Rap(3);
    rap.push(1, 10, 100, 1000, false);
    rap.push(2, 20, 200, 2000, true);
    expect(rap.snapshot()).toEqual([
      { addr: 1, ctx: 10, epoch: 100, pushedAt: 1000, stuff: false },
      { addr: 2, ctx: 20, epoch: 200, pushedAt: 2000, stuff: true },
    ]);
    rap.push(3, 30, 300, 3000, false);
    rap.push(4, 40, 400, 4000, false); // overwrites 1
    rap.pop(4);
    expect(rap.snapshot().map((e) => [e.addr, e.ctx])).toEqual([
      [2, 20],
      [3, 30],
    ]);
  });

  type Op = { k: 'push'; addr: number } | { k: 'pop'; actual: number } | { k: 'clear' };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 7 }).map((addr): Op => ({ k: 'push', addr })) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 7 }).map((actual): Op => ({ k: 'pop', actual })) },
    { weight: 1, arbitrary: fc.constant<Op>({ k: 'clear' }) },
  );

  it('behaves like a bounded array that drops its oldest element (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(opArb, { maxLength: 80 }), (capacity, ops) => {
        const rap = new Rap(capacity);
        const model: number[] = [];
        const ref = { returns: 0, predicted: 0, mispredicted: 0, underflows: 0, pushes: 0, overflows: 0 };
        const poppedRap: (number | null)[] = [];
        const poppedRef: (number | null)[] = [];
        for (const op of ops) {
          if (op.k === 'push') {
            rap.push(op.addr, 0, 0, 0, false);
            ref.pushes++;
            if (model.length === capacity) {
              model.shift();
              ref.overflows++;
            }
            model.push(op.addr);
          } else if (op.k === 'pop') {
            const slot = rap.pop(op.actual);
            poppedRap.push(slot < 0 ? null : rap.addr[slot]!);
            ref.returns++;
            const top = model.pop();
            if (top === undefined) ref.underflows++;
            else if (top === op.actual) ref.predicted++;
            else ref.mispredicted++;
            poppedRef.push(top ?? null);
          } else {
            expect(rap.clear()).toBe(model.length);
            model.length = 0;
          }
          expect(rap.occupancy).toBe(model.length);
        }
        expect(poppedRap).toEqual(poppedRef);
        expect(rap.stats).toEqual(ref);
        expect(rap.snapshot().map((e) => e.addr)).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });
});
