import type { Time } from '../actors/time.js';

/**
 * What EEVDF keeps per schedulable entity (kernel/sched/fair.c, Linux 6.6+), for threads of
 * equal weight: virtual runtime advances with CPU time, the virtual deadline is where the
 * entity's current request (one slice) ends, and `vlag` is what it was owed when it left the
 * run queue (to place it again when it comes back).
 */
export interface SchedEntity {
  vruntime: Time;
  deadline: Time;
  vlag: Time;
}

/**
 * avg_vruntime: the run queue's zero-lag point, the mean virtual runtime of the entities on it
 * (all of weight 1 here); `fallback` when none is (cfs_rq->zero_vruntime).
 */
export function avgVruntime(vruntimes: readonly Time[], fallback: Time): Time {
  if (vruntimes.length === 0) return fallback;
  let sum = 0;
  for (const v of vruntimes) sum += v;
  return Math.floor(sum / vruntimes.length);
}

/**
 * pick_eevdf: among the eligible entities (lag ≥ 0: vruntime not past the average), the one
 * whose deadline comes first; ties go to the one queued first. Returns its index in `queue`.
 * An entity at or below the mean always exists, so a non-empty queue always has a pick.
 */
export function pickEevdf(queue: readonly SchedEntity[], avg: Time): number {
  let best = -1;
  for (let i = 0; i < queue.length; i++) {
    const e = queue[i]!;
    if (e.vruntime > avg) continue;
    if (best < 0 || e.deadline < queue[best]!.deadline) best = i;
  }
  return best;
}

/**
 * update_entity_lag: what the entity is owed as it leaves the run queue, limited to two
 * slices either way (max(2 × slice, TICK_NSEC) for a slice above a tick).
 */
export function lagOf(e: SchedEntity, avg: Time, slice: Time): Time {
  const limit = 2 * slice;
  return Math.max(-limit, Math.min(limit, avg - e.vruntime));
}

/**
 * place_entity with PLACE_LAG: an entity joins a run queue that holds `n` others (running one
 * included) whose average is `avg`. Its lag is inflated by (n + 1) / n, so that adding it leaves
 * it owed what it was owed before; on an empty queue it starts at the zero-lag point. Its new
 * request ends a slice later.
 */
export function placeEntity(e: SchedEntity, n: number, avg: Time, slice: Time): void {
  const lag = n > 0 && e.vlag !== 0 ? Math.trunc((e.vlag * (n + 1)) / n) : 0;
  e.vruntime = avg - lag;
  e.deadline = e.vruntime + slice;
}

/**
 * update_curr's update_deadline: the running entity used up its request (its vruntime reached
 * its deadline), so it asks for the next slice.
 */
export function renewDeadline(e: SchedEntity, slice: Time): void {
  if (e.vruntime >= e.deadline) e.deadline = e.vruntime + slice;
}
