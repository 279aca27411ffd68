import type { Time } from '../actors/time.js';

/**
 * What EEVDF keeps per schedulable entity (kernel/sched/fair.c, Linux 6.6+): virtual runtime
 * advances with CPU time scaled by the entity's weight (calc_delta_fair), the virtual deadline
 * is where the entity's current request (one slice) ends, and `vlag` is what it was owed when
 * it left the run queue (to place it again when it comes back).
 */
export interface SchedEntity {
  vruntime: Time;
  deadline: Time;
  vlag: Time;
  /** se->load.weight, scaled down: sched_prio_to_weight[nice + 20] (1024 at nice 0). */
  readonly weight: number;
}

/** NICE_0_LOAD (scaled down): the weight of a nice-0 thread, the unit of virtual time. */
export const NICE_0_LOAD = 1024;

/**
 * sched_prio_to_weight (kernel/sched/core.c), nice -20 … 19: each step of nice is about 10% of
 * CPU time against a nice-0 neighbour (a factor of ≈ 1.25 in weight).
 */
const PRIO_TO_WEIGHT: readonly number[] = [
  /* -20 */ 88761, 71755, 56483, 46273, 36291, /* -15 */ 29154, 23254, 18705, 14949, 11916, /* -10 */ 9548,
  7620, 6100, 4904, 3906, /*  -5 */ 3121, 2501, 1991, 1586, 1277, /*   0 */ 1024, 820, 655, 526, 423,
  /*   5 */ 335, 272, 215, 172, 137, /*  10 */ 110, 87, 70, 56, 45, /*  15 */ 36, 29, 23, 18, 15,
];

/** The weight of a thread at `nice` (−20 … 19). */
export function weightOfNice(nice: number): number {
  const w = PRIO_TO_WEIGHT[nice + 20];
  if (w === undefined || !Number.isInteger(nice)) throw new RangeError(`nice ${nice} is not in -20..19`);
  return w;
}

/**
 * ⌊a × b / c⌋ for non-negative integers, exact: in doubles while the product is a safe
 * integer, else in BigInt (weights up to 88,761 times picosecond times can exceed 2^53).
 */
function mulDivFloor(a: number, b: number, c: number): number {
  const p = a * b;
  if (Number.isSafeInteger(p)) return Math.floor(p / c);
  return Number((BigInt(a) * BigInt(b)) / BigInt(c));
}

/** trunc(a × b / c) for integers of either sign (div_s64 rounds toward zero). */
function mulDivTrunc(a: number, b: number, c: number): number {
  const r = mulDivFloor(Math.abs(a), b, c);
  return a < 0 ? -r : r;
}

/**
 * calc_delta_fair: `delta` of real time (or of a slice) in the entity's virtual time, delta ×
 * NICE_0_LOAD / weight, rounded down. A nice-0 entity's virtual time is its real time.
 */
export function calcDeltaFair(delta: Time, weight: number): Time {
  return weight === NICE_0_LOAD ? delta : mulDivFloor(delta, NICE_0_LOAD, weight);
}

/**
 * How long the entity must run for its virtual runtime to advance by `vdelta` (the inverse of
 * {@link calcDeltaFair}, rounded up: the first instant it has got there).
 */
export function realTimeFor(vdelta: Time, weight: number): Time {
  if (weight === NICE_0_LOAD || vdelta <= 0) return vdelta;
  const down = mulDivFloor(vdelta, weight, NICE_0_LOAD);
  return calcDeltaFair(down, weight) >= vdelta ? down : down + 1;
}

/**
 * avg_vruntime: the run queue's zero-lag point, the weighted mean of the virtual runtimes of the
 * entities on it, rounded down (Linux keeps Σ key × weight with keys relative to a base, and
 * floors the division); `fallback` when the queue is empty (cfs_rq->zero_vruntime). At equal
 * weights it is the plain mean.
 */
export function avgVruntime(entities: readonly { vruntime: Time; weight: number }[], fallback: Time): Time {
  if (entities.length === 0) return fallback;
  let base = entities[0]!.vruntime;
  for (const e of entities) base = Math.min(base, e.vruntime);
  let sum = 0;
  let load = 0;
  for (const e of entities) {
    sum += (e.vruntime - base) * e.weight;
    load += e.weight;
  }
  if (Number.isSafeInteger(sum)) return base + Math.floor(sum / load);
  let big = 0n;
  for (const e of entities) big += BigInt(e.vruntime - base) * BigInt(e.weight);
  return base + Number(big / BigInt(load));
}

/**
 * pick_eevdf: among the eligible entities (lag ≥ 0: vruntime not past the average —
 * vruntime_eligible compares against the exact weighted mean, which for an integer vruntime is
 * the same as against its floor), the one whose deadline comes first; ties go to the one queued
 * first. Returns its index in `queue`. An entity at or below the mean always exists, so a
 * non-empty queue always has a pick.
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
 * update_entity_lag: what the entity is owed as it leaves the run queue (in its virtual time),
 * limited to two of its slices either way (calc_delta_fair(max(2 × slice, TICK_NSEC)) for a
 * slice above a tick).
 */
export function lagOf(e: SchedEntity, avg: Time, slice: Time): Time {
  const limit = calcDeltaFair(2 * slice, e.weight);
  return Math.max(-limit, Math.min(limit, avg - e.vruntime));
}

/**
 * place_entity with PLACE_LAG: an entity joins a run queue whose entities (running one included)
 * weigh `load` in all and average `avg`. Its lag is inflated by (load + weight) / load, so that
 * adding it leaves it owed what it was owed before; on an empty queue it starts at the zero-lag
 * point. Its new request ends a slice (in its virtual time) later.
 */
export function placeEntity(e: SchedEntity, load: number, avg: Time, slice: Time): void {
  const lag = load > 0 && e.vlag !== 0 ? mulDivTrunc(e.vlag, load + e.weight, load) : 0;
  e.vruntime = avg - lag;
  e.deadline = e.vruntime + calcDeltaFair(slice, e.weight);
}

/**
 * update_curr's update_deadline: the running entity used up its request (its vruntime reached
 * its deadline), so it asks for the next slice.
 */
export function renewDeadline(e: SchedEntity, slice: Time): void {
  if (e.vruntime >= e.deadline) e.deadline = e.vruntime + calcDeltaFair(slice, e.weight);
}
