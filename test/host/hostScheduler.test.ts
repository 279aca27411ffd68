import { describe, expect, it } from 'vitest';
import { Stream } from '../../src/actors/prng.js';
import type { Time } from '../../src/actors/time.js';
import { HostScheduler, type VcpuThread } from '../../src/host/hostScheduler.js';
import { KvmVcpu } from '../../src/host/kvmVcpu.js';
import { policyByName } from '../../src/host/policies/index.js';
import { CoreHw } from '../../src/hw/core.js';
import type { FlushRequest } from '../../src/hw/cpuSoftware.js';
import type { GuestInterrupt } from '../../src/hw/exit.js';
import type { ActionObs } from '../../src/hw/observations.js';
import { type FakePort, FULL_CPUID, fakePort, timing } from './kvmHelpers.js';

/**
 * HostScheduler (src/host/hostScheduler.ts): one pCPU's EEVDF run queue of vCPU threads, steal
 * and run time, KVM's steal-time flags (KVM_VCPU_PREEMPTED, KVM_VCPU_FLUSH_TLB), IBPB on vCPU
 * switch and halt polling — driven directly, without the host machine.
 */

const US = 1_000_000;
const SLICE = 2_800 * US;
const HALT_POLL = 200 * US;
const CTX = timing.contextSwitch;
const IBPB = timing.ibpb;

interface Fixture {
  sched: HostScheduler;
  core: CoreHw;
  port: FakePort;
  kvms: KvmVcpu[];
  t: VcpuThread[];
}

function makeSched(
  o: {
    threads?: number;
    policy?: string;
    pvTlbFlush?: boolean;
    ibpbOnVcpuSwitch?: boolean;
    ibpbClearsRap?: boolean;
    haltPoll?: Time;
    yieldForfeit?: boolean;
    pickBuddy?: boolean;
    delayDequeue?: boolean;
    tick?: Time;
  } = {},
): Fixture {
  const port = fakePort();
  const core = new CoreHw(
    {
      index: 0,
      socket: 0,
      spec: 'eraps-amd',
      rapEntries: 64,
      microarchClears: { num: 0, den: 1 },
      ibpbClearsRap: o.ibpbClearsRap ?? true,
      timing,
    },
    Stream.child(1, 'core'),
  );
  const kvms = Array.from(
    { length: o.threads ?? 3 },
    (_, i) =>
      new KvmVcpu({
        port,
        core,
        policy: policyByName(o.policy ?? 'linux-7.0'),
        npt: true,
        autoIbrs: true,
        hostHasEraps: true,
        cpuid: FULL_CPUID,
        vm: i,
        vcpu: 0,
        level: 1,
        vcpuActor: 10 + i,
      }),
  );
  const sched = new HostScheduler({
    port,
    core,
    threads: kvms.map((kvm, i) => ({
      kvm,
      actor: 10 + i,
      pvTlbFlush: o.pvTlbFlush ?? true,
      vmName: `vm${i}`,
      migratable: false,
    })),
    slice: SLICE,
    haltPoll: o.haltPoll ?? HALT_POLL,
    ibpbOnVcpuSwitch: o.ibpbOnVcpuSwitch ?? true,
    until: 100_000 * US,
    ...(o.yieldForfeit === undefined ? {} : { yieldForfeit: o.yieldForfeit }),
    ...(o.pickBuddy === undefined ? {} : { pickBuddy: o.pickBuddy }),
    ...(o.delayDequeue === undefined ? {} : { delayDequeue: o.delayDequeue }),
    ...(o.tick === undefined ? {} : { tick: o.tick }),
  });
  return { sched, core, port, kvms, t: sched.threads };
}

let reqSeq = 0;
function flushIntr(at: Time, from = 99): GuestInterrupt & { req: FlushRequest } {
  const req: FlushRequest = { id: `sd${reqSeq++}`, pcid: 1, pages: [7], changedAt: at, from };
  return { kind: 'flush', req, from, sentAt: at };
}

/** pickNext, expecting a thread (the machine's `choose` with something runnable). */
function pick(f: Fixture, now: Time): { thread: VcpuThread; cost: Time } {
  const next = f.sched.pickNext(now);
  expect(next && 'thread' in next, `a vCPU thread runnable at ${now}`).toBe(true);
  return next as { thread: VcpuThread; cost: Time };
}

/** pickNext and the VMRUN's record_steal_time, as the host machine does them. */
function enter(f: Fixture, now: Time): VcpuThread {
  const { thread } = pick(f, now);
  f.sched.recordStealTime(thread);
  return thread;
}

describe('run queue', () => {
  it('threads that run whole slices take turns (EEVDF is round robin then), blocked ones are skipped', () => {
    const f = makeSched({ threads: 3 });
    const [a, b, c] = f.t as [VcpuThread, VcpuThread, VcpuThread];
    expect(f.sched.contended).toBe(true);
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE); // a used its request: vruntime S, deadline 2S
    expect(enter(f, SLICE)).toBe(b); // b and c are owed time; equal deadlines: first queued
    f.sched.preemptCurrent(2 * SLICE);
    expect(enter(f, 2 * SLICE)).toBe(c);
    f.sched.blockCurrent(3 * SLICE);
    expect(enter(f, 3 * SLICE)).toBe(a);
    f.sched.preemptCurrent(4 * SLICE);
    expect(enter(f, 4 * SLICE)).toBe(b);
    f.sched.preemptCurrent(5 * SLICE);
    expect(enter(f, 5 * SLICE)).toBe(a); // c sleeps
  });

  it('a thread back from HLT with time owed comes before one that waited longer but had its share', () => {
    const f = makeSched({ threads: 3 });
    const [a, b, c] = f.t as [VcpuThread, VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE); // a: vruntime S
    expect(enter(f, SLICE)).toBe(b);
    f.sched.blockCurrent(SLICE + 100 * US); // b halts after 100 µs, owed ≈ 0.87 ms
    expect(b.vlag).toBe(Math.floor((SLICE + 100 * US) / 3) - 100 * US);
    expect(enter(f, SLICE + 100 * US)).toBe(c);
    expect(f.sched.wake(b, SLICE + US * 1000, true)).toBe(true);
    // c is still eligible after b's placement: RUN_TO_PARITY, no wake-up preemption.
    expect(f.sched.needResched).toBe(false);
    f.sched.preemptCurrent(2 * SLICE + 100 * US);
    // a has waited since S, b only since it woke; b is owed time, a is not.
    expect(enter(f, 2 * SLICE + 100 * US)).toBe(b);
  });

  it('DELAY_DEQUEUE: a thread that halts ahead of the average stays queued; when the pCPU idles it leaves with its debt forgiven', () => {
    for (const delayDequeue of [true, false]) {
      const f = makeSched({ threads: 2, delayDequeue });
      const [a, b] = f.t as [VcpuThread, VcpuThread];
      expect(enter(f, 0)).toBe(a);
      f.sched.blockCurrent(SLICE); // a: vruntime S against b's 0, average S/2: not eligible
      expect(enter(f, SLICE)).toBe(b);
      f.sched.blockCurrent(SLICE + 100 * US); // b ran 100 µs: eligible, it leaves at once
      expect(f.sched.pickNext(SLICE + 100 * US)).toBeUndefined(); // nothing runnable: idle
      // On: pick_eevdf met the delayed a, alone and so eligible, and dequeued it (DELAY_ZERO).
      // Off: a left when it halted, owing half a slice.
      expect(a.vlag, `delayDequeue ${delayDequeue}`).toBe(delayDequeue ? 0 : -SLICE / 2);
    }
  });

  it('DELAY_DEQUEUE: a delayed sleeper that wakes keeps its vruntime (its debt), and does not preempt', () => {
    const woken = (delayDequeue: boolean) => {
      const f = makeSched({ threads: 2, delayDequeue });
      const [a, b] = f.t as [VcpuThread, VcpuThread];
      expect(enter(f, 0)).toBe(a);
      f.sched.blockCurrent(SLICE);
      expect(enter(f, SLICE)).toBe(b);
      f.sched.wake(a, SLICE + 10 * US, true);
      expect(f.sched.needResched).toBe(false);
      return a.vruntime;
    };
    // requeue_delayed_entity: still on the queue, so no placement: vruntime S as it slept.
    expect(woken(true)).toBe(SLICE);
    // Placed again with the lag it left with (−S/2, inflated by the load it joins).
    expect(woken(false)).not.toBe(SLICE);
  });

  it('a migrated thread keeps what is left of its request (PLACE_REL_DEADLINE), placed by its lag', () => {
    const f = makeSched({ threads: 2 });
    const [a] = f.t as [VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(1_000 * US); // a ran 1 ms (it started somewhere inside its request)
    const left = a.deadline - a.vruntime;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(SLICE);
    f.sched.detach(a, 1_000 * US);
    const g = makeSched({ threads: 1 });
    g.sched.attach(a, 1_000 * US);
    // Not a fresh slice: the same part of its request is left on the new run queue.
    expect(a.deadline - a.vruntime).toBe(left);
    expect(a.relDeadline).toBeUndefined();
  });

  it('a woken thread owed time preempts a running one that its arrival leaves ineligible', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE);
    expect(enter(f, SLICE)).toBe(b);
    f.sched.blockCurrent(SLICE + 10 * US); // b ran 10 µs of its share
    expect(enter(f, SLICE + 10 * US)).toBe(a);
    expect(f.sched.needResched).toBe(false);
    f.sched.wake(b, SLICE + 20 * US, true);
    // a, at vruntime S + 10 µs, is past the new average: check_preempt_wakeup_fair resched_curr.
    expect(f.sched.needResched).toBe(true);
    f.sched.preemptCurrent(SLICE + 20 * US);
    expect(enter(f, SLICE + 20 * US)).toBe(b);
  });

  it('a request that ends with only ineligible waiters is renewed, not preempted (pick_eevdf picks the runner again)', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE);
    expect(enter(f, SLICE)).toBe(b);
    f.sched.blockCurrent(SLICE + 10 * US);
    expect(enter(f, SLICE + 10 * US)).toBe(a);
    // b comes back having run 10 µs less than a: a, ahead, is not eligible at its request's end.
    f.sched.wake(b, SLICE + 2_000 * US, true);
    expect(f.sched.keepsCurrent(SLICE + 2_000 * US)).toBe(false);
    const g = makeSched({ threads: 2 });
    const [c, d] = g.t as [VcpuThread, VcpuThread];
    expect(enter(g, 0)).toBe(c);
    g.sched.preemptCurrent(SLICE);
    expect(enter(g, SLICE)).toBe(d);
    g.sched.preemptCurrent(3 * SLICE + 500 * US); // d ran two slices and 500 µs: vruntime 2S + 500 µs
    expect(enter(g, 3 * SLICE + 500 * US)).toBe(c);
    // At c's request end (vruntime 2S, new deadline 3S) d is past the average and its deadline
    // is later (3S + 500 µs): c runs on. Once c is 600 µs further, it is past the average itself.
    expect(g.sched.keepsCurrent(4 * SLICE + 500 * US)).toBe(true);
    expect(g.sched.keepsCurrent(4 * SLICE + 1_100 * US)).toBe(false);
  });

  it('yield_task_fair (6.17+): an eligible yielder forfeits the rest of its request', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE);
    expect(enter(f, SLICE)).toBe(b);
    // b (vruntime 0, deadline S) spins 64 µs and yields: vruntime to its deadline, a new request.
    f.sched.yieldCurrent(SLICE + 64 * US);
    expect({ v: b.vruntime, d: b.deadline }).toEqual({ v: SLICE, d: 2 * SLICE });
    expect(b.preempted).toBe(true);
    expect(enter(f, SLICE + 64 * US)).toBe(a);
    // An ineligible yielder changes nothing: a is ahead of b after running 1 ms.
    f.sched.yieldCurrent(SLICE + 1_064 * US);
    expect(a.vruntime).toBe(SLICE + 1_000 * US);
    expect(a.deadline).toBe(2 * SLICE);
  });

  it('yield_task_fair before 6.17 (yieldForfeit: false): only the deadline moves, the lag stays', () => {
    const f = makeSched({ threads: 2, yieldForfeit: false });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE);
    expect(enter(f, SLICE)).toBe(b);
    f.sched.yieldCurrent(SLICE + 64 * US);
    expect({ v: b.vruntime, d: b.deadline }).toEqual({ v: 64 * US, d: 2 * SLICE });
    // Still eligible, and a is not (it is a slice ahead): b is picked again.
    expect(enter(f, SLICE + 64 * US)).toBe(b);
  });

  it('yield_to: the target becomes the next buddy, picked at once while eligible (PICK_BUDDY)', () => {
    const f = makeSched({ threads: 3 });
    const [a, b, c] = f.t as [VcpuThread, VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(SLICE);
    expect(enter(f, SLICE)).toBe(b);
    // c waits (owed a slice, eligible); a yield elsewhere names it: this pCPU must reschedule.
    expect(f.sched.yieldedTo(c, SLICE + 100 * US)).toBe(true);
    expect(f.sched.needResched).toBe(true);
    f.sched.preemptCurrent(SLICE + 100 * US);
    expect(enter(f, SLICE + 100 * US)).toBe(c);
    // a was the one EEVDF would pick otherwise; naming a thread that is running does nothing.
    expect(f.sched.yieldedTo(c, SLICE + 200 * US)).toBe(false);
    f.sched.preemptCurrent(SLICE + 300 * US);
    // Once picked, the buddy is spent: plain EEVDF again (b is owed most and first on a tie).
    expect(enter(f, SLICE + 300 * US)).toBe(b);
  });

  it('yield_to an ineligible target: buddy set but no reschedule; with pickBuddy off, no buddy', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    expect(enter(f, 0)).toBe(a);
    f.sched.preemptCurrent(2 * SLICE); // a ran two slices
    expect(enter(f, 2 * SLICE)).toBe(b);
    expect(f.sched.yieldedTo(a, 2 * SLICE + 100 * US)).toBe(false);
    expect(f.sched.needResched).toBe(false);
    // Before PICK_BUDDY: the reschedule still comes, and pick_eevdf keeps an eligible current.
    const g = makeSched({ threads: 2, pickBuddy: false });
    const [x, y] = g.t as [VcpuThread, VcpuThread];
    expect(enter(g, 0)).toBe(x);
    g.sched.preemptCurrent(2 * SLICE);
    expect(enter(g, 2 * SLICE)).toBe(y);
    expect(g.sched.yieldedTo(x, 2 * SLICE + 100 * US)).toBe(false); // y is eligible: it runs on
    expect(g.sched.needResched).toBe(false);
    expect(x.stats.boosted).toBe(0);
  });

  it('yield_to with pickBuddy off reschedules a pCPU whose current thread is no longer eligible', () => {
    // Two threads; the second runs on past the queue's average.
    const g = makeSched({ threads: 2, pickBuddy: false });
    const [a, b] = g.t as [VcpuThread, VcpuThread];
    expect(enter(g, 0)).toBe(a);
    g.sched.preemptCurrent(100 * US); // a ran 100 µs: b (at 0) is owed time
    expect(enter(g, 100 * US)).toBe(b);
    // b runs 1 ms: at vruntime 1 ms it is past the average (≈ 550 µs), ineligible.
    expect(g.sched.yieldedTo(a, 1_100 * US)).toBe(true);
    expect(g.sched.needResched).toBe(true);
    expect(a.stats.boosted).toBe(0); // no buddy: pick_eevdf alone decides
  });

  it('current, state and contended follow the transitions; an empty queue idles the pCPU', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    expect(f.sched.current).toBeUndefined();
    enter(f, 0);
    expect(f.sched.current).toBe(a);
    expect(a.state).toBe('running');
    expect(b.state).toBe('runnable');
    expect(f.sched.contended).toBe(true);
    f.sched.blockCurrent(5 * US);
    expect(a.state).toBe('blocked');
    expect(f.sched.current).toBeUndefined();
    expect(enter(f, 5 * US)).toBe(b);
    expect(f.sched.contended).toBe(false);
    f.sched.blockCurrent(6 * US);
    expect(f.sched.pickNext(6 * US)).toBeUndefined();
    expect(f.sched.current).toBeUndefined();
  });

  it('wake only wakes a blocked thread, and counts wake-ups by interrupt only', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    enter(f, 0);
    expect(f.sched.wake(a, 1 * US, true), 'running').toBe(false);
    expect(f.sched.wake(b, 1 * US, true), 'runnable').toBe(false);
    expect(a.stats.wakeups + b.stats.wakeups).toBe(0);
    f.sched.blockCurrent(2 * US);
    const gen = a.wakeGen;
    expect(f.sched.wake(a, 3 * US, false), 'timer').toBe(true);
    expect(a.stats.wakeups).toBe(0);
    // An early wake-up makes the pending HLT timer stale.
    expect(a.wakeGen).not.toBe(gen);
    expect(f.sched.wake(a, 3 * US, true), 'already runnable').toBe(false);
    expect(enter(f, 4 * US)).toBe(b);
    f.sched.blockCurrent(5 * US);
    expect(f.sched.wake(b, 6 * US, true)).toBe(true);
    expect(b.stats.wakeups).toBe(1);
  });

  it('threadOf finds a thread by its vCPU actor', () => {
    const f = makeSched({ threads: 2 });
    expect(f.sched.threadOf(10)).toBe(f.t[0]);
    expect(f.sched.threadOf(11)).toBe(f.t[1]);
    expect(f.sched.threadOf(12)).toBeUndefined();
  });
});

describe('the scheduler tick (host.scheduler.tick)', () => {
  it('a request’s end is noticed at the next tick boundary; without a tick, at once (HRTICK)', () => {
    const exact = makeSched();
    expect(exact.sched.tickAfter(2_800 * US)).toBe(2_800 * US);
    const hz1000 = makeSched({ tick: 1_000 * US });
    expect(hz1000.sched.tickAfter(2_800 * US)).toBe(3_000 * US);
    expect(hz1000.sched.tickAfter(3_000 * US)).toBe(3_000 * US);
    const hz250 = makeSched({ tick: 4_000 * US });
    expect(hz250.sched.tickAfter(1)).toBe(4_000 * US);
    expect(hz250.sched.tickAfter(4_000 * US + 1)).toBe(8_000 * US);
  });

  it('a wake-up notices a request that ended since the last tick: the runner is preempted even when the woken thread is not the pick', () => {
    /** a, b and x take turns; x overruns its request, sleeps ahead (no DELAY_DEQUEUE), and wakes while a is past its own request's end. */
    const woke = (tick: Time | undefined) => {
      const f = makeSched({ threads: 3, delayDequeue: false, ...(tick ? { tick } : {}) });
      const [a, b, x] = f.t as [VcpuThread, VcpuThread, VcpuThread];
      const turn = (at: Time, who: VcpuThread) => {
        expect(enter(f, at)).toBe(who);
      };
      turn(0, a);
      f.sched.preemptCurrent(SLICE);
      turn(SLICE, b);
      f.sched.preemptCurrent(2 * SLICE);
      turn(2 * SLICE, x);
      f.sched.preemptCurrent(3 * SLICE);
      turn(3 * SLICE, a);
      f.sched.preemptCurrent(4 * SLICE);
      turn(4 * SLICE, b);
      f.sched.preemptCurrent(5 * SLICE);
      turn(5 * SLICE, x);
      f.sched.blockCurrent(6 * SLICE + 500 * US); // x ran 500 µs past its request: ahead of the rest
      turn(6 * SLICE + 500 * US, a); // a's request ends at 7 S + 500 µs
      f.sched.wake(x, 7 * SLICE + 800 * US, true);
      return f.sched.needResched;
    };
    // Without a tick the slice timer acted at the request's end; the woken x (ineligible) is not
    // what pick_eevdf would choose, so this wake-up alone preempts nothing.
    expect(woke(undefined)).toBe(false);
    // At HZ=250 a's request end (20.1 ms) waits for the 24 ms tick — or for this wake-up at 20.4.
    expect(woke(4_000 * US)).toBe(true);
  });
});

describe('steal and run time', () => {
  it('steal is time runnable without the pCPU; run is time on it; blocked time is neither', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    enter(f, 0); // a runs 0–100
    f.sched.preemptCurrent(100 * US);
    expect(a.stats.runPs).toBe(100 * US);
    expect(a.stats.preemptions).toBe(1);
    enter(f, 100 * US); // b waited 0–100, runs 100–130
    expect(b.stats.stealPs).toBe(100 * US);
    f.sched.blockCurrent(130 * US); // b blocked 130–500
    expect(b.stats.runPs).toBe(30 * US);
    expect(b.stats.preemptions, 'blocking is not a preemption').toBe(0);
    enter(f, 130 * US); // a waited 100–130, runs 130–…
    expect(a.stats.stealPs).toBe(30 * US);
    f.sched.wake(b, 500 * US, true); // b waits 500–…
    f.sched.finish(700 * US);
    expect(a.stats.runPs).toBe(100 * US + 570 * US);
    expect(a.stats.stealPs).toBe(30 * US);
    expect(b.stats.runPs).toBe(30 * US);
    expect(b.stats.stealPs).toBe(100 * US + 200 * US);
    // The longest single wait: b's 200 µs still open at the end beats its first 100 µs.
    expect(a.stats.maxStealPs).toBe(30 * US);
    expect(b.stats.maxStealPs).toBe(200 * US);
    // Every thread's time adds up: run + steal + blocked = the run's length.
    expect(a.stats.runPs + a.stats.stealPs).toBe(700 * US);
    expect(b.stats.runPs + b.stats.stealPs + 370 * US).toBe(700 * US);
  });

  it('the reported statistics are the threads’ own', () => {
    const f = makeSched({ threads: 2 });
    expect(f.sched.stats.threads).toEqual([f.t[0]!.stats, f.t[1]!.stats]);
    expect(f.sched.stats.threads.map((s) => [s.vm, s.vcpu])).toEqual([
      ['vm0', 0],
      ['vm1', 0],
    ]);
    enter(f, 0);
    f.sched.preemptCurrent(US);
    expect(f.sched.stats.threads[0]!.runPs).toBe(US);
  });

  it('the first thread starts somewhere inside its slice when others wait (no accidental gang scheduling)', () => {
    const f = makeSched({ threads: 2 });
    const { thread } = pick(f, 10 * US);
    expect(f.sched.sliceEnd(thread, 10 * US)).toBeLessThanOrEqual(10 * US + SLICE);
    expect(f.sched.sliceEnd(thread, 10 * US)).toBeGreaterThan(10 * US);
    // Only the first pick of the run is offset; a later request is a whole slice.
    f.sched.preemptCurrent(10 * US + SLICE);
    const next = pick(f, 20 * US + SLICE).thread;
    expect(f.sched.sliceEnd(next, 20 * US + SLICE)).toBe(20 * US + 2 * SLICE);
    // A lone thread has nobody to be out of phase with.
    const lone = makeSched({ threads: 1 });
    const t = pick(lone, 10 * US).thread;
    expect(lone.sched.sliceEnd(t, 10 * US)).toBe(10 * US + SLICE);
  });
});

describe('steal-time flags (KVM_VCPU_PREEMPTED, KVM_VCPU_FLUSH_TLB)', () => {
  it('at time 0 every thread but the first was preempted earlier (steady state)', () => {
    const f = makeSched({ threads: 3 });
    expect(f.t.map((t) => t.preempted)).toEqual([false, true, true]);
  });

  it('preemptCurrent sets preempted; record_steal_time at the next entry clears it', () => {
    const f = makeSched({ threads: 2 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    expect(a.preempted).toBe(false);
    f.sched.preemptCurrent(10 * US);
    expect(a.preempted).toBe(true);
    enter(f, 10 * US);
    f.sched.preemptCurrent(20 * US);
    const { thread } = pick(f, 20 * US);
    expect(thread).toBe(a);
    expect(a.preempted, 'still set until record_steal_time').toBe(true);
    expect(f.sched.recordStealTime(a)).toEqual([]);
    expect(a.preempted).toBe(false);
  });

  it('a thread that halts is not marked preempted (it was not runnable when scheduled out)', () => {
    const f = makeSched({ threads: 2 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    f.sched.blockCurrent(10 * US);
    expect(a.preempted).toBe(false);
  });

  it('record_steal_time without deferred flushes raises no guest flush', () => {
    const f = makeSched({ threads: 2 });
    const [, b] = f.kvms as [KvmVcpu, KvmVcpu];
    enter(f, 0);
    f.sched.preemptCurrent(10 * US);
    const t = enter(f, 10 * US);
    expect(t.kvm).toBe(b);
    expect(b.requests.has('TLB_FLUSH_GUEST')).toBe(false);
  });

  it('PV TLB flush: a flush IPI for a preempted thread sets its flag and is acknowledged at once; its next entry flushes', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    enter(f, 0); // a runs, b preempted (steady state)
    const i1 = flushIntr(5 * US);
    const i2 = flushIntr(6 * US);
    const ack = f.sched.deferFlush(b, i1, 5 * US);
    expect(ack).toEqual({
      id: i1.req.id,
      arrivedAt: 5 * US,
      handledAt: 5 * US,
      ackedAt: 5 * US,
      deferred: true,
    });
    expect(f.sched.deferFlush(b, i2, 6 * US)?.deferred).toBe(true);
    expect(b.deferred).toEqual([i1.req, i2.req]);
    expect(b.stats.deferredFlushes).toBe(2);
    expect(b.kvm.requests.has('TLB_FLUSH_GUEST'), 'not before the entry').toBe(false);
    f.sched.preemptCurrent(10 * US);
    const { thread } = pick(f, 10 * US);
    expect(thread).toBe(b);
    expect(f.sched.recordStealTime(b)).toEqual([i1.req, i2.req]);
    expect(b.kvm.requests.has('TLB_FLUSH_GUEST')).toBe(true);
    expect(b.deferred).toEqual([]);
    expect(b.preempted).toBe(false);
    // The flag is consumed: the next entry flushes nothing more.
    b.kvm.requests.clear();
    f.sched.preemptCurrent(20 * US);
    enter(f, 20 * US);
    f.sched.preemptCurrent(30 * US);
    expect(pick(f, 30 * US).thread).toBe(b);
    expect(f.sched.recordStealTime(b)).toEqual([]);
    expect(b.kvm.requests.has('TLB_FLUSH_GUEST')).toBe(false);
    expect(a.stats.deferredFlushes).toBe(0);
  });

  it('mutant-forget-pv-flush: record_steal_time hands the deferred flushes on but raises no guest flush', () => {
    const f = makeSched({ threads: 2, policy: 'mutant-forget-pv-flush' });
    const [, b] = f.t as [VcpuThread, VcpuThread];
    enter(f, 0);
    const intr = flushIntr(5 * US);
    expect(f.sched.deferFlush(b, intr, 5 * US)?.deferred).toBe(true);
    f.sched.preemptCurrent(10 * US);
    expect(pick(f, 10 * US).thread).toBe(b);
    expect(f.sched.recordStealTime(b)).toEqual([intr.req]);
    expect(b.kvm.requests.has('TLB_FLUSH_GUEST')).toBe(false);
    expect(b.preempted).toBe(false);
    expect(b.deferred).toEqual([]);
  });

  it('no deferral without PV TLB flush, for other interrupts, or for a flush without a request', () => {
    const f = makeSched({ threads: 2, pvTlbFlush: false });
    const [, b] = f.t as [VcpuThread, VcpuThread];
    enter(f, 0);
    expect(b.preempted).toBe(true);
    expect(f.sched.deferFlush(b, flushIntr(US), US)).toBeUndefined();
    const g = makeSched({ threads: 2 });
    const [, gb] = g.t as [VcpuThread, VcpuThread];
    enter(g, 0);
    expect(g.sched.deferFlush(gb, { kind: 'ipi', from: 99, sentAt: US }, US)).toBeUndefined();
    expect(g.sched.deferFlush(gb, { kind: 'flush', from: 99, sentAt: US }, US)).toBeUndefined();
    expect(gb.deferred).toEqual([]);
    expect(gb.stats.deferredFlushes).toBe(0);
  });

  it('no deferral for a halted thread, a woken one waiting in the queue, or the running one (KVM marks only preempted vCPUs)', () => {
    const f = makeSched({ threads: 2 });
    const [a, b] = f.t as [VcpuThread, VcpuThread];
    enter(f, 0);
    expect(f.sched.deferFlush(a, flushIntr(US), US), 'running').toBeUndefined();
    f.sched.blockCurrent(2 * US); // a halts
    expect(f.sched.deferFlush(a, flushIntr(3 * US), 3 * US), 'halted').toBeUndefined();
    enter(f, 3 * US); // b runs
    f.sched.wake(a, 4 * US, true); // a runnable again, but it was never preempted
    expect(a.state).toBe('runnable');
    expect(f.sched.deferFlush(a, flushIntr(5 * US), 5 * US), 'woken, waiting').toBeUndefined();
    expect(a.deferred).toEqual([]);
    expect(a.stats.deferredFlushes).toBe(0);
    // …whereas b, once preempted, is skipped.
    f.sched.preemptCurrent(6 * US);
    expect(f.sched.deferFlush(b, flushIntr(7 * US), 7 * US)?.deferred).toBe(true);
  });
});

describe('IBPB on vCPU switch (kvm_arch_vcpu_load, switch_vcpu_ibpb)', () => {
  it('the first vCPU on the pCPU: a context switch, no IBPB (no vCPU ran here before)', () => {
    const f = makeSched({ threads: 2 });
    expect(pick(f, 0).cost).toBe(CTX);
    expect(f.sched.stats.ibpbs).toBe(0);
    expect(f.sched.stats.vcpuSwitches).toBe(0);
  });

  it('a different vCPU: IBPB, which clears the RAP on ibpbClearsRap parts and says so', () => {
    const f = makeSched({ threads: 2 });
    enter(f, 0);
    f.sched.preemptCurrent(10 * US);
    f.core.rapHost.push(0x1000, 0, f.core.candidateEpoch, 0, false);
    expect(f.core.rapHost.snapshot().length).toBeGreaterThan(0);
    const { cost } = pick(f, 10 * US);
    expect(cost).toBe(CTX + IBPB);
    expect(f.sched.stats.vcpuSwitches).toBe(1);
    expect(f.sched.stats.ibpbs).toBe(1);
    expect(f.core.clears.ibpb).toBe(1);
    expect(f.core.rapHost.snapshot()).toEqual([]);
    const obs = f.port.of<ActionObs>('rap.action');
    expect(obs).toHaveLength(1);
    expect(obs[0]).toMatchObject({ action: 'ibpb', cleared: true, microarch: false, pcpu: 0 });
  });

  it('without ibpbClearsRap the IBPB is still issued and paid, but clears nothing', () => {
    const f = makeSched({ threads: 2, ibpbClearsRap: false });
    enter(f, 0);
    f.sched.preemptCurrent(10 * US);
    expect(pick(f, 10 * US).cost).toBe(CTX + IBPB);
    expect(f.sched.stats.ibpbs).toBe(1);
    expect(f.core.clears.ibpb).toBeUndefined();
    expect(f.port.of('rap.action')).toEqual([]);
  });

  it('with ibpbOnVcpuSwitch off: vCPU switches, no IBPB', () => {
    const f = makeSched({ threads: 2, ibpbOnVcpuSwitch: false });
    enter(f, 0);
    f.sched.preemptCurrent(10 * US);
    expect(pick(f, 10 * US).cost).toBe(CTX);
    expect(f.sched.stats.vcpuSwitches).toBe(1);
    expect(f.sched.stats.ibpbs).toBe(0);
    expect(f.core.clears.ibpb).toBeUndefined();
  });

  it('the same vCPU again (nothing else ran in between): no IBPB', () => {
    const f = makeSched({ threads: 1 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    f.sched.blockCurrent(10 * US);
    f.sched.wake(a, 20 * US, true);
    pick(f, 20 * US);
    expect(f.sched.stats.ibpbs).toBe(0);
    expect(f.sched.stats.vcpuSwitches).toBe(0);
  });
});

describe('halt polling (halt_poll_ns)', () => {
  it('a vCPU woken within haltPoll, with nothing else run meanwhile, costs no context switch', () => {
    const f = makeSched({ threads: 1 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    f.sched.blockCurrent(10 * US);
    f.sched.wake(a, 10 * US + HALT_POLL, true);
    expect(pick(f, 10 * US + HALT_POLL).cost).toBe(0);
  });

  it('a vCPU woken after haltPoll ran out pays the context switch (the pCPU went to sleep)', () => {
    const f = makeSched({ threads: 1 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    f.sched.blockCurrent(10 * US);
    f.sched.wake(a, 10 * US + HALT_POLL + 1, true);
    expect(pick(f, 10 * US + HALT_POLL + 1).cost).toBe(CTX);
  });

  it('with haltPoll 0 every wake-up from HLT pays the context switch', () => {
    const f = makeSched({ threads: 1, haltPoll: 0 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    f.sched.blockCurrent(10 * US);
    f.sched.wake(a, 11 * US, true);
    expect(pick(f, 11 * US).cost).toBe(CTX);
  });

  it('a vCPU woken within haltPoll after another vCPU ran pays the switch and the IBPB', () => {
    const f = makeSched({ threads: 2 });
    const [a] = f.t as [VcpuThread];
    enter(f, 0);
    f.sched.blockCurrent(10 * US);
    enter(f, 10 * US); // b runs
    f.sched.wake(a, 20 * US, true);
    f.sched.blockCurrent(30 * US);
    expect(pick(f, 30 * US)).toEqual({ thread: a, cost: CTX + IBPB });
  });
});

describe('Hyper-V flush (kvm_hv_flush_tlb, kvm_hv_vcpu_flush_tlb)', () => {
  function hvReq(pages: number[], from = 99): FlushRequest {
    return { id: `hv${reqSeq++}`, pcid: 1, pages, changedAt: 0, from };
  }

  it('a target not in guest mode acknowledges at once; a running one when it exits', () => {
    const f = makeSched({ threads: 2 });
    const running = enter(f, 0);
    const waiting = f.t.find((t) => t !== running)!;
    const r1 = hvReq([3]);
    expect(f.sched.queueHvFlush(waiting, r1, 5, false)).toMatchObject({ id: r1.id, deferred: true });
    const r2 = hvReq([4]);
    expect(f.sched.queueHvFlush(running, r2, 6, true)).toBeUndefined();
    expect(f.sched.hvExitAcks(running, 9)).toEqual([
      { to: 99, ack: { id: r2.id, arrivedAt: 6, handledAt: 9, ackedAt: 9, deferred: false } },
    ]);
    // Acknowledged once only.
    expect(f.sched.hvExitAcks(running, 10)).toEqual([]);
  });

  it('per-address entries are flushed by INVLPGA in the target ASID before entry, with no guest flush', () => {
    const f = makeSched({ threads: 1 });
    const t = f.t[0]!;
    const space = t.kvm.vmcb01.asid * 4096 + 1;
    f.core.tlb.fill(space, 3, 1);
    f.core.tlb.fill(space, 4, 1);
    f.sched.queueHvFlush(t, hvReq([3]), 0, false);
    const { reqs, cost } = f.sched.serviceHvFlush(t);
    expect(reqs).toHaveLength(1);
    expect(cost).toBe(timing.invlpg);
    expect(f.core.tlb.lookup(space, 3)).toBe(-1);
    expect(f.core.tlb.lookup(space, 4)).toBe(1);
    expect(t.kvm.requests.has('TLB_FLUSH_GUEST')).toBe(false);
    // Serviced once: the FIFO is empty now.
    expect(f.sched.serviceHvFlush(t).reqs).toHaveLength(0);
  });

  it('more than 16 queued entries overflow the FIFO: the next entry is a guest flush instead', () => {
    const f = makeSched({ threads: 1 });
    const t = f.t[0]!;
    for (let i = 0; i < 17; i++) f.sched.queueHvFlush(t, hvReq([i]), i, false);
    const { reqs, cost } = f.sched.serviceHvFlush(t);
    expect(reqs).toHaveLength(17);
    expect(cost).toBe(0);
    expect(t.kvm.requests.has('TLB_FLUSH_GUEST')).toBe(true);
    expect(t.stats.hvFlushes).toBe(17);
  });
});
