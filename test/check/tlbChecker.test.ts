import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NS } from '../../src/actors/time.js';
import { TlbChecker } from '../../src/check/tlbChecker.js';
import { encodeContext } from '../../src/hw/context.js';
import type { ShootdownCompleteObs, ShootdownStartObs, TlbStaleUseObs } from '../../src/hw/observations.js';

/** Shootdown `id` of `pages` of PCID `pcid` by pCPU 0: page tables changed at 1000 ns, complete at 5000 ns. */
function shootdown(
  c: TlbChecker,
  id = 'sd1',
  pcid = 2,
  pages = [7],
  changedNs = 1000,
  completeNs = 5000,
): void {
  const start: ShootdownStartObs = { id, pcpu: 0, vm: null, pcid, pages, targets: [1, 2] };
  c.onStart(changedNs * NS, start);
  const done: ShootdownCompleteObs = {
    id,
    pcpu: 0,
    vm: null,
    pcid,
    pages,
    changedAt: changedNs * NS,
    latency: (completeNs - changedNs) * NS,
    targets: 2,
    crossSocket: false,
  };
  c.onComplete(completeNs * NS, done);
}

/** The host context of process pcid-1 on a pCPU (what LinuxOs reports). */
function hostCtx(pcpu: number, pcid: number): number {
  return encodeContext({ world: 'host', level: 0, vm: 0, view: pcpu, process: pcid - 1 });
}

function staleUse(
  pcpu: number,
  pcid: number,
  page: number,
  filledNs: number,
  changedNs = 1000,
): TlbStaleUseObs {
  return {
    pcpu,
    vm: null,
    ctx: hostCtx(pcpu, pcid),
    pcid,
    page,
    filledAt: filledNs * NS,
    changedAt: changedNs * NS,
  };
}

describe('TlbChecker', () => {
  it('a use of a translation filled before the change, after the shootdown completed, is one tlb-stale', () => {
    const c = new TlbChecker();
    shootdown(c);
    c.onStaleUse(6000 * NS, staleUse(1, 2, 7, 500));
    const vs = c.violations();
    expect(vs).toHaveLength(1);
    const v = vs[0]!;
    expect(v).toMatchObject({ property: 'tlb-stale', atNs: 6000, pcpu: 1, occurrences: 1 });
    expect(v.consumer).toMatchObject({ world: 'host', process: 1 }); // PCID 2 is process 1
    expect(v.producer.atNs).toBe(500);
    expect(v.promise).toMatch(/sd1/);
    expect(v.promise).toMatch(/page 7/);
    expect(v.because).toMatch(/pCPU 0 saw every acknowledgement/);
    expect(v.events).toHaveLength(4);
    expect(v.events[0]).toMatch(/^500ns .*fill/);
    expect(v.events[1]).toMatch(/^1us .*changed/);
    expect(v.events[2]).toMatch(/^5us .*complete/);
    expect(v.events[3]).toMatch(/^6us .*stale/);
  });

  it('a use exactly at completion counts (the promise holds from the last acknowledgement on)', () => {
    const c = new TlbChecker();
    shootdown(c);
    c.onStaleUse(5000 * NS, staleUse(1, 2, 7, 500));
    expect(c.violations()).toHaveLength(1);
  });

  it('a stale use before the shootdown completed is legal', () => {
    const c = new TlbChecker();
    c.onStart(1000 * NS, { id: 'sd1', pcpu: 0, vm: null, pcid: 2, pages: [7], targets: [1] });
    c.onStaleUse(3000 * NS, staleUse(1, 2, 7, 500));
    c.onComplete(5000 * NS, {
      id: 'sd1',
      pcpu: 0,
      vm: null,
      pcid: 2,
      pages: [7],
      changedAt: 1000 * NS,
      latency: 4000 * NS,
      targets: 1,
      crossSocket: false,
    });
    expect(c.violations()).toEqual([]);
  });

  it('a translation filled after the change is not stale', () => {
    const c = new TlbChecker();
    shootdown(c);
    c.onStaleUse(6000 * NS, staleUse(1, 2, 7, 2000, 1000));
    c.onStaleUse(6000 * NS, staleUse(1, 2, 7, 1000, 1000)); // filled at the very change
    expect(c.violations()).toEqual([]);
  });

  it('only the shot-down pages of the shot-down PCID are judged', () => {
    const c = new TlbChecker();
    shootdown(c, 'sd1', 2, [7, 9]);
    c.onStaleUse(6000 * NS, staleUse(1, 2, 8, 500)); // another page
    c.onStaleUse(6000 * NS, staleUse(1, 3, 7, 500)); // another PCID
    expect(c.violations()).toEqual([]);
    c.onStaleUse(6000 * NS, staleUse(1, 2, 9, 500)); // the second page of the shootdown
    expect(c.violations().map((v) => v.property)).toEqual(['tlb-stale']);
  });

  it('folds repeated uses by the same pCPU of the same page and shootdown; keeps other pCPUs apart', () => {
    const c = new TlbChecker();
    shootdown(c);
    for (let i = 0; i < 3; i++) c.onStaleUse((6000 + i) * NS, staleUse(1, 2, 7, 500));
    c.onStaleUse(6100 * NS, staleUse(2, 2, 7, 500));
    expect(c.violations().map((v) => [v.pcpu, v.occurrences])).toEqual([
      [1, 3],
      [2, 1],
    ]);
  });

  it('judges against every completed shootdown of the page, not only the first', () => {
    const c = new TlbChecker();
    shootdown(c, 'sd1', 2, [7], 1000, 2000);
    shootdown(c, 'sd2', 2, [7], 3000, 4000);
    // Filled between the two changes: fine for sd1, stale for sd2.
    c.onStaleUse(5000 * NS, staleUse(1, 2, 7, 2500, 3000));
    const vs = c.violations();
    expect(vs).toHaveLength(1);
    expect(vs[0]!.promise).toMatch(/sd2/);
  });

  it('explains a use on a core the shootdown skipped in lazy TLB mode, and only on that core', () => {
    const c = new TlbChecker();
    c.onDeferred(2000 * NS, { id: 'sd1', pcpu: 1, ctx: hostCtx(1, 2), path: 'lazy' });
    shootdown(c);
    c.onStaleUse(6000 * NS, staleUse(1, 2, 7, 500));
    c.onStaleUse(6000 * NS, staleUse(2, 2, 7, 500));
    const [skipped, other] = c.violations();
    expect(skipped!.pcpu).toBe(1);
    expect(skipped!.because).toMatch(/lazy TLB mode/);
    expect(skipped!.events.some((e) => /leaves lazy TLB mode/.test(e))).toBe(true);
    expect(other!.pcpu).toBe(2);
    expect(other!.because).not.toMatch(/lazy/);
  });

  it('explains a use on a core the shootdown skipped because it ran another address space', () => {
    const c = new TlbChecker();
    c.onDeferred(2000 * NS, { id: 'sd1', pcpu: 1, ctx: hostCtx(1, 3), path: 'other-mm' });
    shootdown(c);
    c.onStaleUse(6000 * NS, staleUse(1, 2, 7, 500));
    const [v] = c.violations();
    expect(v!.because).toMatch(/ran another address space/);
    expect(v!.events.some((e) => /switches back to the address space/.test(e))).toBe(true);
  });

  it('is deterministic: the same observations give identical violations (property)', () => {
    type Ev =
      | { k: 'sd'; t: number; id: string; pcid: number; pages: number[]; lat: number }
      | { k: 'use'; t: number; o: TlbStaleUseObs };
    const evArb: fc.Arbitrary<Ev> = fc.oneof(
      fc
        .record({
          t: fc.nat(1000),
          id: fc.string({ minLength: 1, maxLength: 3 }),
          pcid: fc.integer({ min: 1, max: 3 }),
          pages: fc.uniqueArray(fc.nat(4), { minLength: 1, maxLength: 3 }),
          lat: fc.nat(100),
        })
        .map((r): Ev => ({ k: 'sd', ...r })),
      fc
        .record({
          t: fc.nat(1200),
          pcpu: fc.nat(3),
          pcid: fc.integer({ min: 1, max: 3 }),
          page: fc.nat(4),
          back: fc.nat(1200),
        })
        .map(
          (r): Ev => ({
            k: 'use',
            t: r.t,
            o: {
              pcpu: r.pcpu,
              vm: null,
              ctx: hostCtx(r.pcpu, r.pcid),
              pcid: r.pcid,
              page: r.page,
              filledAt: Math.max(0, r.t - r.back),
              changedAt: r.t,
            },
          }),
        ),
    );
    const run = (evs: Ev[]) => {
      const c = new TlbChecker();
      // Expand shootdowns into start/complete and feed everything in time order.
      const flat: { t: number; f: () => void }[] = [];
      for (const e of evs) {
        if (e.k === 'sd') {
          flat.push({
            t: e.t,
            f: () =>
              c.onStart(e.t, { id: e.id, pcpu: 0, vm: null, pcid: e.pcid, pages: e.pages, targets: [1] }),
          });
          flat.push({
            t: e.t + e.lat,
            f: () =>
              c.onComplete(e.t + e.lat, {
                id: e.id,
                pcpu: 0,
                vm: null,
                pcid: e.pcid,
                pages: e.pages,
                changedAt: e.t,
                latency: e.lat,
                targets: 1,
                crossSocket: false,
              }),
          });
        } else flat.push({ t: e.t, f: () => c.onStaleUse(e.t, e.o) });
      }
      flat.sort((a, b) => a.t - b.t);
      for (const x of flat) x.f();
      return c.violations();
    };
    fc.assert(
      fc.property(fc.array(evArb, { maxLength: 40 }), (evs) => {
        expect(run(structuredClone(evs))).toEqual(run(evs));
      }),
      { numRuns: 200 },
    );
  });
});
