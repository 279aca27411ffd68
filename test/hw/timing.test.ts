import { describe, expect, it } from 'vitest';
import { MS, NS } from '../../src/actors/time.js';
import {
  resolveTiming,
  TIMING_TABLE,
  type TimingKey,
  TimingKeyError,
  timingRows,
} from '../../src/hw/timing.js';

const GHZ3 = 3_000_000_000;

describe('timing table', () => {
  it('gives every entry a non-empty source, a description, a known tag and unit, and a finite non-negative value', () => {
    for (const [key, e] of Object.entries(TIMING_TABLE)) {
      expect(e.source.trim().length, key).toBeGreaterThan(0);
      expect(e.what.trim().length, key).toBeGreaterThan(0);
      expect(['S', 'S2', 'E'], key).toContain(e.tag);
      expect(['cycles', 'ns', 'us', 'ms', 'count'], key).toContain(e.unit);
      expect(Number.isFinite(e.value) && e.value >= 0, key).toBe(true);
    }
  });

  it('marks exactly the entries no model reads as reference figures, each with the reason', () => {
    const refs = Object.entries(TIMING_TABLE).flatMap(([key, e]) =>
      'reference' in e ? [[key, (e as { reference: string }).reference] as const] : [],
    );
    expect(refs.map(([k]) => k).sort()).toEqual(['guestIpiExit', 'kvmRunEntry', 'kvmRunExit', 'rangeFlush']);
    for (const [key, why] of refs) expect(why.trim().length, key).toBeGreaterThan(10);
  });

  it('entries tagged S or S2 name a real source (not a dash)', () => {
    for (const [key, e] of Object.entries(TIMING_TABLE)) {
      if (e.tag !== 'E') expect(e.source, key).not.toMatch(/^\s*—/);
    }
  });

  it('converts cycles at the clock: 1350 cycles at 3 GHz = 450 000 ps, and twice that at 1.5 GHz', () => {
    expect(resolveTiming(GHZ3).vmrunVmexitRoundTrip).toBe(450_000);
    expect(resolveTiming(1_500_000_000).vmrunVmexitRoundTrip).toBe(900_000);
    expect(resolveTiming(GHZ3).cr3Reload).toBe(32_000); // 96 cycles
  });

  it('converts durations independently of the clock, and keeps counts as counts', () => {
    for (const hz of [GHZ3, 2_000_000_000]) {
      const t = resolveTiming(hz);
      expect(t.ipiSameSocket).toBe(1000 * NS);
      expect(t.ipiCrossSocket).toBe(2700 * NS);
      expect(t.schedSlice).toBe(2.8 * MS);
      expect(t.haltPoll).toBe(200_000_000);
      expect(t.pleWindow).toBe(3000);
      expect(t.pageAccessEvery).toBe(16);
    }
  });

  it('resolves every key to an integer number of picoseconds', () => {
    const t = resolveTiming(GHZ3);
    expect(Object.keys(t).sort()).toEqual(Object.keys(TIMING_TABLE).sort());
    for (const [k, v] of Object.entries(t)) expect(Number.isInteger(v), k).toBe(true);
  });

  it('overrides replace the named entries and leave the others alone', () => {
    const base = resolveTiming(GHZ3);
    const t = resolveTiming(GHZ3, { ipiSameSocket: 5_000, rapStuff: 7 });
    expect(t.ipiSameSocket).toBe(5_000);
    expect(t.rapStuff).toBe(7);
    for (const k of Object.keys(base) as TimingKey[]) {
      if (k !== 'ipiSameSocket' && k !== 'rapStuff') expect(t[k], k).toBe(base[k]);
    }
  });

  it('an unknown override key throws TimingKeyError naming the key and the valid ones', () => {
    let caught: unknown;
    try {
      resolveTiming(GHZ3, { vmexit: 1 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(TimingKeyError);
    expect((caught as TimingKeyError).key).toBe('vmexit');
    expect((caught as Error).message).toMatch(/vmexit/);
    expect((caught as Error).message).toMatch(/ipiSameSocket/);
  });

  // Regression: resolveTiming checked keys with `key in TIMING_TABLE`, which walks the prototype
  // chain, so Object.prototype names (toString, constructor, ...) were silently accepted.
  it('rejects override keys that are only Object.prototype members', () => {
    for (const key of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      // JSON.parse makes `__proto__` an own key, as a YAML mapping does.
      expect(() => resolveTiming(GHZ3, JSON.parse(`{"${key}": 5}`)), key).toThrow(TimingKeyError);
    }
  });

  it('timingRows lists every entry with its resolved value and source', () => {
    const t = resolveTiming(GHZ3);
    const rows = timingRows(t);
    expect(rows.map((r) => r.key).sort()).toEqual(Object.keys(TIMING_TABLE).sort());
    const row = rows.find((r) => r.key === 'vmrunVmexitRoundTrip')!;
    expect(row).toMatchObject({ ps: 450_000, value: 1350, unit: 'cycles', tag: 'S' });
    expect(row.source).toMatch(/LKML/);
  });
});
