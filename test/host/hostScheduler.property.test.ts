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
const HALT_POLL = 200 * US;
const CTX = timing.contextSwitch;
const IBPB = timing.ibpb;

type Op =
  | { op: 'pick'; dt: Time }
  | { op: 'preempt'; dt: Time }
  | { op: 'block'; dt: Time }
  | { op: 'wake'; dt: Time; thread: number; byInterrupt: boolean }
  | { op: 'flush'; dt: Time; thread: number };

const dt = fc.integer({ min: 0, max: 300 * US });
const opArb = (threads: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ op: fc.constant('pick' as const), dt }),
    fc.record({ op: fc.constant('preempt' as const), dt }),
    fc.record({ op: fc.constant('block' as const), dt }),
    fc.record({
      op: fc.constant('wake' as const),
      dt,
      thread: fc.integer({ min: 0, max: threads - 1 }),
      byInterrupt: fc.boolean(),
    }),
    fc.record({ op: fc.constant('flush' as const), dt, thread: fc.integer({ min: 0, max: threads - 1 }) }),
  );

const caseArb = fc
  .record({ threads: fc.integer({ min: 1, max: 5 }), ibpbOnVcpuSwitch: fc.boolean() })
  .chain(({ threads, ibpbOnVcpuSwitch }) =>
    fc.record({
      threads: fc.constant(threads),
      ibpbOnVcpuSwitch: fc.constant(ibpbOnVcpuSwitch),
      ops: fc.array(opArb(threads), { maxLength: 80 }),
    }),
  );

function makeSched(threads: number, ibpbOnVcpuSwitch: boolean): HostScheduler {
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
    })),
    slice: 2_800 * US,
    haltPoll: HALT_POLL,
    ibpbOnVcpuSwitch,
    until: Number.MAX_SAFE_INTEGER,
  });
}

/** The run queue is private; the invariants are about it, so the test reads it. */
function runQueue(s: HostScheduler): VcpuThread[] {
  return (s as unknown as { runQueue: VcpuThread[] }).runQueue;
}

/** What the scheduler should do, kept independently. */
class Model {
  readonly queue: number[];
  current: number | undefined;
  readonly blocked = new Set<number>();
  readonly blockedPs: number[];
  readonly blockedAt: number[];
  /** Preempted since its last entry (KVM_VCPU_PREEMPTED); the first thread alone starts clear. */
  readonly preempted: boolean[];
  last: number | undefined;
  switches = 0;
  ibpbs = 0;
  picks: number[] = [];

  constructor(
    n: number,
    readonly ibpbOnSwitch: boolean,
  ) {
    this.queue = Array.from({ length: n }, (_, i) => i);
    this.blockedPs = Array.from({ length: n }, () => 0);
    this.blockedAt = Array.from({ length: n }, () => -1);
    this.preempted = Array.from({ length: n }, (_, i) => i > 0);
  }

  /** The thread the scheduler must pick, and what getting it running must cost. */
  pick(now: Time): { thread: number; cost: Time } | undefined {
    const t = this.queue.shift();
    if (t === undefined) return undefined;
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
}

function checkInvariants(s: HostScheduler, m: Model, now: Time): void {
  const q = runQueue(s);
  // FIFO, and the queue holds exactly the model's runnable threads in the model's order.
  expect(q.map((t) => t.actor - 10)).toEqual(m.queue);
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
}

describe('HostScheduler under random operation sequences', () => {
  it('keeps its invariants, follows the FIFO model and starves nobody', () => {
    fc.assert(
      fc.property(caseArb, ({ threads, ibpbOnVcpuSwitch, ops }) => {
        const s = makeSched(threads, ibpbOnVcpuSwitch);
        const m = new Model(threads, ibpbOnVcpuSwitch);
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
              const t = m.current!;
              s.preemptCurrent(now);
              m.current = undefined;
              m.queue.push(t);
              m.preempted[t] = true;
              break;
            }
            case 'block': {
              if (!s.current) continue;
              const t = m.current!;
              s.blockCurrent(now);
              m.current = undefined;
              m.blocked.add(t);
              m.blockedAt[t] = now;
              break;
            }
            case 'wake': {
              const wasBlocked = m.blocked.has(o.thread);
              const before = s.threads[o.thread]!.stats.wakeups;
              expect(s.wake(s.threads[o.thread]!, now, o.byInterrupt)).toBe(wasBlocked);
              expect(s.threads[o.thread]!.stats.wakeups - before).toBe(wasBlocked && o.byInterrupt ? 1 : 0);
              if (wasBlocked) {
                m.blocked.delete(o.thread);
                m.blockedPs[o.thread]! += now - m.blockedAt[o.thread]!;
                m.queue.push(o.thread);
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

        // No starvation: wake everybody; within one round of slices every thread gets the pCPU
        // (the current one already has it).
        for (const t of s.threads) {
          if (t.state === 'blocked') {
            s.wake(t, now, true);
            m.blocked.delete(t.actor - 10);
            m.queue.push(t.actor - 10);
          }
        }
        m.picks = m.current === undefined ? [] : [m.current];
        for (let round = 0; round < threads; round++) {
          now += 1000 * US;
          if (s.current && s.contended) {
            m.queue.push(m.current!);
            m.preempted[m.current!] = true;
            m.current = undefined;
            s.preemptCurrent(now);
          }
          if (!s.current) pick();
          checkInvariants(s, m, now);
        }
        expect(new Set(m.picks).size).toBe(threads);
      }),
      { numRuns: 300 },
    );
  });
});
