import type { Time } from '../actors/time.js';
import { hostKernelContext } from '../hw/context.js';
import type { CoreHw } from '../hw/core.js';
import { type SchedEntity, weightOfNice } from './eevdf.js';
import { pushHostChain, returnHostChain } from './hostChain.js';

/** What a host task is, as the scenario gives it (`host.tasks[]`). */
export interface HostTaskSpec {
  name: string;
  every: Time;
  run: Time;
  callDepth: number;
  /** Its nice value (−20 … 19): its EEVDF weight against the vCPU threads. Absent: 0. */
  nice?: number;
}

/** What the report shows per host task thread. */
export interface HostTaskStats {
  name: string;
  core: number;
  nice: number;
  /** Wake-ups that got the pCPU and ran their burst. */
  bursts: number;
  runPs: number;
  /** Time runnable but waiting for the pCPU (its scheduling latency), total and worst. */
  waitPs: number;
  maxWaitPs: number;
}

/** Return addresses of task k's frames inside schedule(), apart from KVM's and other tasks'. */
const TASK_CHAIN = 0x7e000000;

/**
 * A host kernel thread bound to one pCPU that also runs vCPU threads (a vhost worker, a
 * kworker): it wakes every `every`, needs `run` of CPU time and sleeps again, competing in the
 * same run queue as the vCPU threads, so they wait for it (steal time, a preempted flag) and it
 * waits for them. Its code is a kernel call chain: it resumes by returning out of schedule(),
 * through whatever the host RAP holds by then, and goes to sleep by calling into it. A kernel
 * thread keeps the previous mm (lazy TLB), so switching to it writes no CR3 and clears nothing.
 * It shoots nothing down and sends no IPIs.
 */
export class HostTaskThread implements SchedEntity {
  readonly kind = 'task' as const;
  /** EEVDF's accounting (eevdf.ts): a kernel thread competes like a vCPU thread, by its weight. */
  readonly weight: number;
  vruntime: Time = 0;
  deadline: Time = 0;
  vlag: Time = 0;
  state: 'runnable' | 'running' | 'blocked' = 'blocked';
  /** The period it is in began here (its wake-up); the next one begins `every` later. */
  wokeAt: Time = 0;
  queuedAt: Time = 0;
  ranSince: Time = 0;
  /** CPU time the current burst still needs (a preempted burst resumes with the rest). */
  remaining: Time = 0;
  readonly stats: HostTaskStats;
  private readonly ctx: number;
  private readonly chain: number;

  constructor(
    readonly spec: HostTaskSpec,
    private readonly core: CoreHw,
    index: number,
  ) {
    this.ctx = hostKernelContext(core.params.index);
    this.chain = TASK_CHAIN + index * 256;
    this.weight = weightOfNice(spec.nice ?? 0);
    this.stats = {
      name: spec.name,
      core: core.params.index,
      nice: spec.nice ?? 0,
      bursts: 0,
      runPs: 0,
      waitPs: 0,
      maxWaitPs: 0,
    };
  }

  /** The period's timer fired: runnable, waiting for the pCPU, with a whole burst to run. */
  wake(now: Time): void {
    this.state = 'runnable';
    this.wokeAt = now;
    this.queuedAt = now;
    this.remaining = this.spec.run;
  }

  /**
   * It got the pCPU: it returns out of schedule() and runs for at most one `slice` (EEVDF's
   * request size, the same as a vCPU thread's). Returns when that stretch ends: the burst's end,
   * or the slice's, where the scheduler looks whether anything else waits.
   */
  start(now: Time, slice: Time, port: { observe(kind: string, data: unknown): void }): Time {
    const wait = now - this.queuedAt;
    this.stats.waitPs += wait;
    this.stats.maxWaitPs = Math.max(this.stats.maxWaitPs, wait);
    this.state = 'running';
    this.ranSince = now;
    returnHostChain(this.core, this.ctx, this.chain, this.spec.callDepth, port);
    return now + Math.min(this.remaining, slice);
  }

  /** What is left of the burst at `now`, counting the time run since the last account. */
  remainingAt(now: Time): Time {
    return this.remaining - (now - this.ranSince);
  }

  /** Nothing else waits at the slice's end: it runs on for another slice (or the rest of the burst). */
  runOn(now: Time, slice: Time): Time {
    this.account(now);
    return now + Math.min(this.remaining, slice);
  }

  /**
   * Its slice ended with other threads waiting: preempted mid-burst, it enters schedule() from
   * the tick (its call chain goes onto the host RAP as when it sleeps) and waits with the rest.
   */
  preempt(now: Time): void {
    this.account(now);
    this.state = 'runnable';
    this.queuedAt = now;
    pushHostChain(this.core, this.ctx, this.chain, this.spec.callDepth, now);
  }

  /**
   * The burst is done: it calls into schedule() and sleeps until its next period (at once, if it
   * ran so late that the next period has begun). Returns when it wakes.
   */
  sleep(now: Time): Time {
    this.account(now);
    this.stats.bursts++;
    this.state = 'blocked';
    pushHostChain(this.core, this.ctx, this.chain, this.spec.callDepth, now);
    return Math.max(now + 1, this.wokeAt + this.spec.every);
  }

  /** Counts the time run since `ranSince` against the burst. */
  private account(now: Time): void {
    this.stats.runPs += now - this.ranSince;
    this.remaining -= now - this.ranSince;
    this.ranSince = now;
  }

  /** At the end of the run: a waiting or running task's open interval counts up to `now`. */
  finish(now: Time): void {
    if (this.state === 'runnable') {
      this.stats.waitPs += now - this.queuedAt;
      this.queuedAt = now;
    } else if (this.state === 'running') {
      this.account(now);
    }
  }
}
