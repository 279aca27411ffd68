import { describe, expect, it } from 'vitest';
import {
  avgVruntime,
  calcDeltaFair,
  lagOf,
  NICE_0_LOAD,
  pickEevdf,
  placeEntity,
  realTimeFor,
  renewDeadline,
  type SchedEntity,
  weightOfNice,
} from '../../src/host/eevdf.js';

/** EEVDF's arithmetic (src/host/eevdf.ts) on hand-worked cases. */

const S = 2_800;
const e = (vruntime: number, deadline: number, vlag = 0, weight = NICE_0_LOAD): SchedEntity => ({
  vruntime,
  deadline,
  vlag,
  weight,
});
const vs = (...v: number[]) => v.map((vruntime) => ({ vruntime, weight: NICE_0_LOAD }));

describe('EEVDF for threads of equal weight', () => {
  it('avg_vruntime is the mean (rounded down), or the zero-lag point of an empty queue', () => {
    expect(avgVruntime(vs(0, 1, 2), 99)).toBe(1);
    expect(avgVruntime(vs(0, 0, 1), 99)).toBe(0);
    expect(avgVruntime(vs(-3, 0), 99)).toBe(-2);
    expect(avgVruntime([], 99)).toBe(99);
  });

  it('pick_eevdf: only eligible entities (not past the mean), earliest deadline, first queued on a tie', () => {
    // The earliest deadline (5) belongs to an entity past the mean: not eligible.
    expect(pickEevdf([e(10, 100), e(30, 5), e(20, 60)], 20)).toBe(2);
    expect(pickEevdf([e(10, 60), e(20, 60)], 20)).toBe(0);
    expect(pickEevdf([e(20, 60), e(10, 60)], 20)).toBe(0);
    // A lone entity is at the mean.
    expect(pickEevdf([e(7, 9)], 7)).toBe(0);
  });

  it('update_entity_lag: what is owed at dequeue, limited to two slices either way', () => {
    expect(lagOf(e(100, 0), 150, S)).toBe(50);
    expect(lagOf(e(100, 0), 40, S)).toBe(-60);
    expect(lagOf(e(0, 0), 10 * S, S)).toBe(2 * S);
    expect(lagOf(e(10 * S, 0), 0, S)).toBe(-2 * S);
  });

  it('place_entity: the lag inflated by (n + 1) / n, none on an empty queue, a new slice-long request', () => {
    const a = e(0, 0, 100);
    placeEntity(a, NICE_0_LOAD, 1_000, S);
    expect(a).toEqual({ vruntime: 800, deadline: 800 + S, vlag: 100, weight: NICE_0_LOAD });
    const b = e(0, 0, -90);
    placeEntity(b, 3 * NICE_0_LOAD, 1_000, S);
    expect(b.vruntime).toBe(1_120);
    const c = e(5, 5, 100);
    placeEntity(c, 0, 1_000, S);
    expect(c.vruntime).toBe(1_000);
  });

  it('update_deadline: a new request only once the current one is used up', () => {
    const a = e(100, 200);
    renewDeadline(a, S);
    expect(a.deadline).toBe(200);
    a.vruntime = 200;
    renewDeadline(a, S);
    expect(a.deadline).toBe(200 + S);
  });
});

describe('EEVDF with weights (nice)', () => {
  it('sched_prio_to_weight: 1024 at nice 0, the table ends, ≈ 1.25 a step; refuses what is not a nice value', () => {
    expect(weightOfNice(0)).toBe(1024);
    expect(weightOfNice(-20)).toBe(88761);
    expect(weightOfNice(19)).toBe(15);
    expect(weightOfNice(-1) / weightOfNice(0)).toBeCloseTo(1.25, 1);
    expect(() => weightOfNice(20)).toThrow(RangeError);
    expect(() => weightOfNice(0.5)).toThrow(RangeError);
  });

  it("calc_delta_fair: real time in the entity's virtual time, and back (rounded up)", () => {
    expect(calcDeltaFair(1_000, NICE_0_LOAD)).toBe(1_000);
    expect(calcDeltaFair(1_000, 2_048)).toBe(500);
    expect(calcDeltaFair(1_000, 15)).toBe(68_266); // ⌊1000 × 1024 / 15⌋
    // Past 2^53 the product goes through BigInt and stays exact.
    expect(calcDeltaFair(10 ** 13, 15)).toBe(682_666_666_666_666);
    expect(realTimeFor(68_266, 15)).toBe(1_000);
    expect(realTimeFor(68_267, 15)).toBe(1_001);
    for (const w of [15, 335, 1024, 1277, 88761])
      for (const v of [1, 7, 1_000, 123_457]) {
        const t = realTimeFor(v, w);
        expect(calcDeltaFair(t, w), `w ${w} v ${v}`).toBeGreaterThanOrEqual(v);
        expect(calcDeltaFair(t - 1, w), `w ${w} v ${v}`).toBeLessThan(v);
      }
  });

  it('avg_vruntime is the weighted mean, rounded down, exact past 2^53', () => {
    // (0 × 3072 + 400 × 1024) / 4096 = 100
    expect(
      avgVruntime(
        [
          { vruntime: 0, weight: 3072 },
          { vruntime: 400, weight: 1024 },
        ],
        0,
      ),
    ).toBe(100);
    expect(
      avgVruntime(
        [
          { vruntime: 0, weight: 2 },
          { vruntime: 1, weight: 1 },
        ],
        0,
      ),
    ).toBe(0);
    const big = 10 ** 14;
    expect(
      avgVruntime(
        [
          { vruntime: 0, weight: 88761 },
          { vruntime: big, weight: 88761 },
        ],
        0,
      ),
    ).toBe(big / 2);
  });

  it("update_entity_lag: the limit is two slices of the entity's virtual time", () => {
    const heavy = e(0, 0, 0, 2 * NICE_0_LOAD);
    expect(lagOf(heavy, 10 * S, S)).toBe(S);
    const light = e(0, 0, 0, NICE_0_LOAD / 2);
    expect(lagOf(light, 10 * S, S)).toBe(4 * S);
  });

  it('place_entity: the lag inflated by (load + weight) / load; a request of a slice in virtual time', () => {
    // Joining a queue of load 1024 with weight 3072: lag × 4096 / 1024.
    const a = e(0, 0, 100, 3072);
    placeEntity(a, NICE_0_LOAD, 1_000, S);
    expect(a.vruntime).toBe(600);
    expect(a.deadline).toBe(600 + Math.floor((S * 1024) / 3072));
    // Toward zero, as div_s64 rounds: −7 × 3 / 2 = −10.5 → −10.
    const b = e(0, 0, -7, 1024);
    placeEntity(b, 2048, 0, S);
    expect(b.vruntime).toBe(10);
  });

  it('update_deadline: the next request is a slice of virtual time', () => {
    const a = e(200, 200, 0, 4 * NICE_0_LOAD);
    renewDeadline(a, S);
    expect(a.deadline).toBe(200 + S / 4);
  });
});
