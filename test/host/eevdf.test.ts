import { describe, expect, it } from 'vitest';
import {
  avgVruntime,
  lagOf,
  pickEevdf,
  placeEntity,
  renewDeadline,
  type SchedEntity,
} from '../../src/host/eevdf.js';

/** EEVDF's arithmetic (src/host/eevdf.ts) on hand-worked cases, at equal weights. */

const S = 2_800;
const e = (vruntime: number, deadline: number, vlag = 0): SchedEntity => ({ vruntime, deadline, vlag });

describe('EEVDF for threads of equal weight', () => {
  it('avg_vruntime is the mean (rounded down), or the zero-lag point of an empty queue', () => {
    expect(avgVruntime([0, 1, 2], 99)).toBe(1);
    expect(avgVruntime([0, 0, 1], 99)).toBe(0);
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
    placeEntity(a, 1, 1_000, S);
    expect(a).toEqual({ vruntime: 800, deadline: 800 + S, vlag: 100 });
    const b = e(0, 0, -90);
    placeEntity(b, 3, 1_000, S);
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
