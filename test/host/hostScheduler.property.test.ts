import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Time } from '../../src/actors/time.js';
import { HostScheduler, type VcpuThread } from '../../src/host/hostScheduler.js';
import { fakePort, kvmOn, makeCore, timing } from './kvmHelpers.js';

/**
 * HostScheduler under random operation sequences, as the host machine issues them (pick when the
 * pCPU has no current thread, then record_steal_time; preempt or block the current one; wake any
 * thread; a shootdown's flush IPI for a thread that is not running), checked against a model:
 * a thread is in exactly one place, the run queue is FIFO, time adds up, flags are consistent,
 * costs are the model's, and every runnable thread is eventually picked.
 */

const US = 1_000_000;
const SLICE = 2_800 * US;
const HALT_POLL = 200 * US;
const CTX = timing.contextSwitch;
const IBPB = timing.ibpb;

type Op =
  | { op: 'pick'; dt: Time }
  | { op: 'preempt'; dt: Time }
  | { op: 'sliceEnd'; dt: Time }
  | { op: 'yield'; dt: Time }
  | { op: 'buddy'; dt: Time; thread: number }
  | { op: 'block'; dt: Time }
  | { op: 'wake'; dt: Time; thread: number; byInterrupt: boolean }
  | { op: 'flush'; dt: Time; thread: number };

const dt = fc.integer({ min: 0, max: 300 * US });
const opArb = (threads: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ op: fc.constant('pick' as const), dt }),
    fc.record({ op: fc.constant('preempt' as const), dt }),
    fc.record({ op: fc.constant('sliceEnd' as const), dt }),
    fc.record({ op: fc.constant('yield' as const), dt }),
    fc.record({ op: fc.constant('buddy' as const), dt, thread: fc.integer({ min: 0, max: threads - 1 }) }),
    fc.record({ op: fc.constant('block' as const), dt }),
    fc.record({
      op: fc.constant('wake' as const),
      dt,
      thread: fc.integer({ min: 0, max: threads - 1 }),
      byInterrupt: fc.boolean(),
    }),
    fc.record({ op: fc.constant('flush' as const), dt, thread: fc.integer({ min: 0, max: threads - 1 }) }),
  );

/** sched_prio_to_weight at the nice values drawn (kernel/sched/core.c), kept apart from eevdf.ts. */
const WEIGHT: Record<number, number> = { [-5]: 3121, [-1]: 1277, 0: 1024, 1: 820, 5: 335 };
const niceArb = fc.constantFrom(0, 0, 0, -5, -1, 1, 5);

const caseArb = fc
  .record({
    threads: fc.integer({ min: 1, max: 5 }),
    ibpbOnVcpuSwitch: fc.boolean(),
    yieldForfeit: fc.boolean(),
    pickBuddy: fc.boolean(),
    delayDequeue: fc.boolean(),
  })
  .chain(({ threads, ibpbOnVcpuSwitch, yieldForfeit, pickBuddy, delayDequeue }) =>
    fc.record({
      threads: fc.constant(threads),
      ibpbOnVcpuSwitch: fc.constant(ibpbOnVcpuSwitch),
      yieldForfeit: fc.constant(yieldForfeit),
      pickBuddy: fc.constant(pickBuddy),
      delayDequeue: fc.constant(delayDequeue),
      nice: fc.array(niceArb, { minLength: threads, maxLength: threads }),
      ops: fc.array(opArb(threads), { maxLength: 80 }),
    }),
  );

function makeSched(
  threads: number,
  ibpbOnVcpuSwitch: boolean,
  nice: readonly number[],
  rules: { yieldForfeit: boolean; pickBuddy: boolean; delayDequeue: boolean },
): HostScheduler {
  const port = fakePort();
  const core = makeCore('eraps-amd');
  const kvm = (i: number) => kvmOn(core, port, i, 0, 10 + i);
  return new HostScheduler({
    port,
    core,
    threads: Array.from({ length: threads }, (_, i) => ({
      kvm: kvm(i),
      actor: 10 + i,
      pvTlbFlush: true,
      vmName: `vm${i}`,
      migratable: false,
      nice: nice[i]!,
    })),
    slice: SLICE,
    haltPoll: HALT_POLL,
    ibpbOnVcpuSwitch,
    until: Number.MAX_SAFE_INTEGER,
    ...rules,
  });
}

/** The run queue is private; the invariants are about it, so the test reads it. */
function runQueue(s: HostScheduler): VcpuThread[] {
  return (s as unknown as { runQueue: VcpuThread[] }).runQueue;
}

/** ⌊a / b⌋ in BigInt (BigInt division rounds toward zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b > a ? q - 1n : q;
}

/** What the scheduler should do, kept independently (its weighted arithmetic in BigInt). */
class Model {
  /** Runnable threads in the order they joined the queue (EEVDF's tie-break). */
  readonly queue: number[];
  /** Sleepers still queued (DELAY_DEQUEUE), in the order they slept. */
  readonly delayed: number[] = [];
  current: number | undefined;
  readonly blocked = new Set<number>();
  readonly blockedPs: number[];
  readonly blockedAt: number[];
  /** Preempted since its last entry (KVM_VCPU_PREEMPTED); the first thread alone starts clear. */
  readonly preempted: boolean[];
  /** EEVDF per thread: vruntime, virtual deadline, lag at dequeue. */
  readonly v: number[];
  readonly vd: number[];
  readonly vlag: number[];
  vSince = 0;
  zeroV = 0;
  needResched = false;
  /** cfs_rq->next: a directed yield's target. */
  buddy: number | undefined;
  last: number | undefined;
  switches = 0;
  ibpbs = 0;
  picks: number[] = [];

  constructor(
    n: number,
    readonly ibpbOnSwitch: boolean,
    readonly w: readonly number[],
    readonly rules: { yieldForfeit: boolean; pickBuddy: boolean; delayDequeue: boolean },
  ) {
    this.queue = Array.from({ length: n }, (_, i) => i);
    this.blockedPs = Array.from({ length: n }, () => 0);
    this.blockedAt = Array.from({ length: n }, () => -1);
    this.preempted = Array.from({ length: n }, (_, i) => i > 0);
    this.v = Array.from({ length: n }, () => 0);
    this.vd = Array.from({ length: n }, (_, i) => this.virt(SLICE, i));
    this.vlag = Array.from({ length: n }, () => 0);
  }

  /** `dt` of thread t's real time in its virtual time: ⌊dt × 1024 / weight⌋. */
  virt(dt: number, t: number): number {
    return Number((BigInt(dt) * 1024n) / BigInt(this.w[t]!));
  }

  /** avg_vruntime over the queue, the current thread brought up to `now`, and `also`: Σ v·w / Σ w, floored. */
  avg(now: Time, also?: number): number {
    const es = [...this.queue, ...this.delayed].map((t) => [this.v[t]!, this.w[t]!] as const);
    if (this.current !== undefined && this.current !== also)
      es.push([this.v[this.current]! + this.virt(now - this.vSince, this.current), this.w[this.current]!]);
    if (also !== undefined) es.push([this.v[also]!, this.w[also]!]);
    if (es.length === 0) return this.zeroV;
    const sum = es.reduce((a, [v, w]) => a + BigInt(v) * BigInt(w), 0n);
    const load = es.reduce((a, [, w]) => a + BigInt(w), 0n);
    return Number(floorDiv(sum, load));
  }

  /** pick_eevdf over the queue: eligible (v ≤ average), earliest deadline, first queued on a tie. */
  eevdf(avg: number, among: readonly number[] = this.queue): number | undefined {
    let best: number | undefined;
    for (const t of among) {
      if (this.v[t]! > avg) continue;
      if (best === undefined || this.vd[t]! < this.vd[best]!) best = t;
    }
    return best;
  }

  /** update_curr on the current thread. */
  account(now: Time): void {
    const t = this.current!;
    this.v[t]! += this.virt(now - this.vSince, t);
    this.vSince = now;
    if (this.v[t]! >= this.vd[t]!) this.vd[t] = this.v[t]! + this.virt(SLICE, t);
  }

  /** The thread the scheduler must pick, and what getting it running must cost. */
  pick(now: Time): { thread: number; cost: Time } | undefined {
    // A delayed sleeper that pick_eevdf would choose is dequeued instead (its lag zeroed).
    while (this.delayed.length > 0) {
      const d = this.eevdf(this.avg(now), [...this.queue, ...this.delayed]);
      if (d === undefined || !this.delayed.includes(d)) break;
      this.delayed.splice(this.delayed.indexOf(d), 1);
      this.vlag[d] = 0;
    }
    if (this.queue.length === 0) return undefined;
    const avg = this.avg(now);
    this.zeroV = avg;
    // PICK_BUDDY first; else, with nothing running, the queue holds its own average: someone
    // is eligible.
    const t = this.eligibleBuddy(avg) ?? this.eevdf(avg)!;
    if (t === this.buddy) this.buddy = undefined;
    this.queue.splice(this.queue.indexOf(t), 1);
    if (this.v[t]! >= this.vd[t]!) this.vd[t] = this.v[t]! + this.virt(SLICE, t);
    this.vSince = now;
    this.needResched = false;
    const polled = t === this.last && this.blockedAt[t]! >= 0 && now - this.blockedAt[t]! <= HALT_POLL;
    let cost = polled ? 0 : CTX;
    if (t !== this.last) {
      if (this.last !== undefined) {
        this.switches++;
        if (this.ibpbOnSwitch) {
          this.ibpbs++;
          cost += IBPB;
        }
      }
      this.last = t;
    }
    this.blockedAt[t] = -1;
    this.current = t;
    this.preempted[t] = false; // record_steal_time at the entry
    this.picks.push(t);
    return { thread: t, cost };
  }

  /**
   * At a request's end with others waiting: pick_eevdf keeps the running thread if it is
   * eligible and its renewed deadline is strictly before the best waiting thread's.
   */
  keeps(now: Time): boolean {
    const t = this.current!;
    const v = this.v[t]! + this.virt(now - this.vSince, t);
    const avg = this.avg(now);
    if (v > avg || this.eligibleBuddy(avg) !== undefined) return false;
    const vd = v >= this.vd[t]! ? v + this.virt(SLICE, t) : this.vd[t]!;
    const best = this.eevdf(avg);
    return best === undefined || vd < this.vd[best]!;
  }

  eligibleBuddy(avg: number): number | undefined {
    const b = this.buddy;
    return b !== undefined && this.queue.includes(b) && this.v[b]! <= avg ? b : undefined;
  }

  /** yield_task_fair: forfeit (6.17+) if eligible, or only the deadline moves (before). */
  yieldCurrent(now: Time): void {
    const t = this.current!;
    this.account(now);
    if (!this.rules.yieldForfeit) this.vd[t]! += this.virt(SLICE, t);
    else if (this.v[t]! <= this.avg(now)) {
      this.v[t] = this.vd[t]!;
      this.vd[t]! += this.virt(SLICE, t);
    }
    this.preempt(now);
  }

  /** yield_to named thread t of this run queue: next buddy, resched if it is eligible. */
  yieldedTo(t: number, now: Time): boolean {
    if (!this.queue.includes(t)) return false;
    if (!this.rules.pickBuddy) {
      // No buddy; resched_curr makes pick_eevdf run, which switches only from an ineligible curr.
      if (this.current === undefined) return false;
      const cur = this.v[this.current]! + this.virt(now - this.vSince, this.current);
      if (cur <= this.avg(now)) return false;
      this.needResched = true;
      return true;
    }
    this.buddy = t;
    if (this.current === undefined || this.eligibleBuddy(this.avg(now)) === undefined) return false;
    this.needResched = true;
    return true;
  }

  preempt(now: Time): void {
    const t = this.current!;
    this.account(now);
    this.current = undefined;
    this.queue.push(t);
    this.preempted[t] = true;
  }

  block(now: Time): void {
    const t = this.current!;
    this.account(now);
    this.current = undefined;
    const avg = this.avg(now, t);
    if (this.rules.delayDequeue && this.v[t]! > avg) this.delayed.push(t);
    else {
      const limit = this.virt(2 * SLICE, t);
      this.vlag[t] = Math.max(-limit, Math.min(limit, avg - this.v[t]!));
    }
    this.blocked.add(t);
    this.blockedAt[t] = now;
  }

  /** place_entity with PLACE_LAG, then check_preempt_wakeup_fair (RUN_TO_PARITY). */
  wake(t: number, now: Time): void {
    // A delayed sleeper is still queued: it keeps its vruntime unless it is owed time by now.
    const wasDelayed = this.delayed.includes(t);
    if (wasDelayed) this.delayed.splice(this.delayed.indexOf(t), 1);
    if (!wasDelayed || this.avg(now, t) > this.v[t]!) {
      if (wasDelayed) this.vlag[t] = 0;
      let load = [...this.queue, ...this.delayed].reduce((a, q) => a + this.w[q]!, 0);
      if (this.current !== undefined) load += this.w[this.current]!;
      const avg = this.avg(now);
      // div_s64 rounds toward zero, as BigInt division does.
      const lag =
        load > 0 && this.vlag[t] !== 0
          ? Number((BigInt(this.vlag[t]!) * BigInt(load + this.w[t]!)) / BigInt(load))
          : 0;
      this.v[t] = avg - lag;
      this.vd[t] = this.v[t]! + this.virt(SLICE, t);
    }
    this.blocked.delete(t);
    this.queue.push(t);
    if (this.current === undefined) return;
    const after = this.avg(now);
    const cur = this.v[this.current]! + this.virt(now - this.vSince, this.current);
    if (cur > after && this.eevdf(after, [...this.queue, ...this.delayed]) === t) this.needResched = true;
  }
}

function checkInvariants(s: HostScheduler, m: Model, now: Time): void {
  const q = runQueue(s);
  // The queue holds exactly the model's runnable threads, in the order they joined it.
  expect(q.map((t) => t.actor - 10)).toEqual(m.queue);
  expect(s.needResched).toBe(m.needResched);
  for (const t of s.threads) {
    const i = t.actor - 10;
    expect({ v: t.vruntime, vd: t.deadline }, `EEVDF state of thread ${i}`).toEqual({
      v: m.v[i],
      vd: m.vd[i],
    });
  }
  expect(s.current ? s.current.actor - 10 : undefined).toBe(m.current);
  // A thread is in at most one place: current, run queue, or blocked — and its state says which.
  const seen = new Map<number, string>();
  const place = (t: VcpuThread, where: string) => {
    expect(
      seen.get(t.actor - 10),
      `thread ${t.actor - 10} both ${seen.get(t.actor - 10)} and ${where}`,
    ).toBeUndefined();
    seen.set(t.actor - 10, where);
  };
  if (s.current) place(s.current, 'current');
  for (const t of q) place(t, 'queued');
  for (const t of s.threads) if (t.state === 'blocked') place(t, 'blocked');
  expect(seen.size, 'every thread is somewhere').toBe(s.threads.length);
  for (const t of s.threads) {
    const where = seen.get(t.actor - 10);
    expect(t.state).toBe(where === 'current' ? 'running' : where === 'queued' ? 'runnable' : 'blocked');
    expect(t.state === 'blocked').toBe(m.blocked.has(t.actor - 10));
    // Time: run + steal never exceeds the elapsed time.
    expect(t.stats.runPs).toBeGreaterThanOrEqual(0);
    expect(t.stats.stealPs).toBeGreaterThanOrEqual(0);
    expect(t.stats.runPs + t.stats.stealPs + m.blockedPs[t.actor - 10]!).toBeLessThanOrEqual(now);
    // KVM_VCPU_PREEMPTED only on a runnable thread scheduled out; a flush flag only with it.
    expect(t.preempted).toBe(m.preempted[t.actor - 10]);
    if (t.preempted) expect(t.state).toBe('runnable');
    if (t.deferred.length > 0) expect(t.preempted).toBe(true);
  }
  expect(s.stats.vcpuSwitches).toBe(m.switches);
  expect(s.stats.ibpbs).toBe(m.ibpbs);
  // Delayed sleepers (DELAY_DEQUEUE) are blocked threads still queued, the model's, in order.
  const delayed = (s as unknown as { delayed: VcpuThread[] }).delayed;
  expect(delayed.map((t) => t.actor - 10)).toEqual(m.delayed);
  for (const t of delayed) expect(t.state).toBe('blocked');
}

describe('HostScheduler under random operation sequences', () => {
  it('keeps its invariants, follows the EEVDF model and starves nobody', () => {
    fc.assert(
      fc.property(
        caseArb,
        ({ threads, ibpbOnVcpuSwitch, yieldForfeit, pickBuddy, delayDequeue, nice, ops }) => {
          const rules = { yieldForfeit, pickBuddy, delayDequeue };
          const s = makeSched(threads, ibpbOnVcpuSwitch, nice, rules);
          const m = new Model(
            threads,
            ibpbOnVcpuSwitch,
            nice.map((n) => WEIGHT[n]!),
            rules,
          );
          // Start at 1 ps: blockedAt 0 means "never blocked" to the scheduler.
          let now = 1;
          let flushes = 0;
          const pick = () => {
            const want = m.pick(now);
            const next = s.pickNext(now);
            // No host tasks here: whatever runs is a vCPU thread.
            const got = next && 'thread' in next ? next : undefined;
            expect(got && { thread: got.thread.actor - 10, cost: got.cost }).toEqual(want);
            if (got) s.recordStealTime(got.thread);
            // The run's first pick starts inside its slice at a point the pCPU's stream draws.
            if (got && m.picks.length === 1) m.vd[got.thread.actor - 10] = got.thread.deadline;
          };
          for (const o of ops) {
            now += o.dt;
            switch (o.op) {
              case 'pick':
                if (s.current) continue; // the machine picks only when the pCPU has no thread
                pick();
                break;
              case 'preempt': {
                // The machine preempts only at a slice end with another thread waiting.
                if (!s.current || !s.contended) continue;
                s.preemptCurrent(now);
                m.preempt(now);
                break;
              }
              case 'sliceEnd': {
                // The machine's SLICE: preempt unless schedule() would pick the thread again.
                if (!s.current || !s.contended) continue;
                const keep = s.keepsCurrent(now);
                expect(keep).toBe(m.keeps(now));
                if (!keep) {
                  s.preemptCurrent(now);
                  m.preempt(now);
                }
                break;
              }
              case 'yield': {
                // The machine yields only with another thread waiting (yield_to's own check).
                if (!s.current || !s.contended) continue;
                s.yieldCurrent(now);
                m.yieldCurrent(now);
                break;
              }
              case 'buddy': {
                const t = s.threads[o.thread]!;
                expect(s.yieldedTo(t, now), `yield_to thread ${o.thread}`).toBe(m.yieldedTo(o.thread, now));
                break;
              }
              case 'block': {
                if (!s.current) continue;
                s.blockCurrent(now);
                m.block(now);
                break;
              }
              case 'wake': {
                const wasBlocked = m.blocked.has(o.thread);
                const before = s.threads[o.thread]!.stats.wakeups;
                expect(s.wake(s.threads[o.thread]!, now, o.byInterrupt)).toBe(wasBlocked);
                expect(s.threads[o.thread]!.stats.wakeups - before).toBe(wasBlocked && o.byInterrupt ? 1 : 0);
                if (wasBlocked) {
                  m.blockedPs[o.thread]! += now - m.blockedAt[o.thread]!;
                  m.wake(o.thread, now);
                }
                break;
              }
              case 'flush': {
                const t = s.threads[o.thread]!;
                if (t === s.current) continue; // a running target takes the IPI
                const req = { id: `sd${flushes++}`, pcid: 1, pages: [1], changedAt: now, from: 99 };
                const ack = s.deferFlush(t, { kind: 'flush', req, from: 99, sentAt: now }, now);
                expect(ack !== undefined, `deferral of thread ${o.thread} (${t.state})`).toBe(
                  m.preempted[o.thread],
                );
                break;
              }
            }
            checkInvariants(s, m, now);
          }

          // Close the run: run + steal + blocked is exactly the elapsed time of every thread.
          s.finish(now);
          for (const t of s.threads) {
            const blocked = m.blocked.has(t.actor - 10) ? now - m.blockedAt[t.actor - 10]! : 0;
            expect(t.stats.runPs + t.stats.stealPs + m.blockedPs[t.actor - 10]! + blocked).toBe(now);
          }

          // No starvation: wake everybody; with the pCPU changing hands every millisecond, every
          // thread gets it within a bounded number of rounds (a lag is at most two slices).
          for (const t of s.threads) {
            if (t.state === 'blocked') {
              s.wake(t, now, true);
              m.blockedPs[t.actor - 10]! += now - m.blockedAt[t.actor - 10]!;
              m.wake(t.actor - 10, now);
            }
          }
          m.picks = m.current === undefined ? [] : [m.current];
          for (let round = 0; round < 20 * threads && new Set(m.picks).size < threads; round++) {
            now += 1000 * US;
            if (s.current && s.contended) {
              s.preemptCurrent(now);
              m.preempt(now);
            }
            if (!s.current) pick();
            checkInvariants(s, m, now);
          }
          expect(new Set(m.picks).size).toBe(threads);
        },
      ),
      { numRuns: 300 },
    );
  });
});
