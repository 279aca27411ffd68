import type { Port } from '../actors/hostedActor.js';
import type { Time } from '../actors/time.js';
import { hostKernelContext } from '../hw/context.js';
import type { CoreHw } from '../hw/core.js';
import type { FlushAck, FlushRequest, GuestFlushView } from '../hw/cpuSoftware.js';
import type { GuestInterrupt } from '../hw/exit.js';
import { type ActionObs, ObsKind, type ShootdownDeferredObs } from '../hw/observations.js';
import {
  avgVruntime,
  calcDeltaFair,
  lagOf,
  pickEevdf,
  placeEntity,
  realTimeFor,
  renewDeadline,
  type SchedEntity,
  weightOfNice,
} from './eevdf.js';
import type { HostTaskStats, HostTaskThread } from './hostTask.js';
import type { KvmVcpu } from './kvmVcpu.js';

/** KVM_HV_TLB_FLUSH_FIFO_SIZE (arch/x86/kvm/hyperv.h): entries per vCPU before a flush-all. */
const HV_TLB_FLUSH_FIFO_SIZE = 16;

/** What the host scheduler keeps per vCPU thread, as reported. */
export interface VcpuThreadStats {
  /** The VM's name and the vCPU's index in it. */
  vm: string;
  vcpu: number;
  /** The thread's nice value (its EEVDF weight: sched_prio_to_weight). */
  nice: number;
  /** Time runnable but waiting for the pCPU (what KVM reports to the guest as steal time). */
  stealPs: number;
  /** The longest single wait for the pCPU: the run queue's latency at its worst for this vCPU. */
  maxStealPs: number;
  /** Time in guest mode or in KVM on its behalf. */
  runPs: number;
  /** Times it was scheduled out while still runnable (KVM_VCPU_PREEMPTED set). */
  preemptions: number;
  /** Times an interrupt woke it from HLT. */
  wakeups: number;
  /** Shootdowns that skipped it through PV TLB flush (KVM_VCPU_FLUSH_TLB set for it). */
  deferredFlushes: number;
  /** Hyper-V flush requests queued for it (flushed by the host before its next entry). */
  hvFlushes: number;
  /** Times the host scheduler moved it to another pCPU of its migration domain. */
  migrations: number;
  /** PAUSE exits: its spin loop ran out of its PLE window (pause_interception). */
  pleExits: number;
  /** PAUSE exits after which it gave its pCPU away (kvm_vcpu_on_spin → yield_to). */
  directedYields: number;
  /** Times a spinner's yield_to made it the next buddy of its run queue (PICK_BUDDY). */
  boosted: number;
}

/** One vCPU thread on this pCPU: KVM's state for the vCPU and the scheduler's (EEVDF's too). */
export interface VcpuThread extends SchedEntity {
  readonly kind: 'vcpu';
  readonly kvm: KvmVcpu;
  /** Actor index of the vCPU (L1) machine. */
  readonly actor: number;
  readonly pvTlbFlush: boolean;
  /** Unpinned, and the host balances its migration domain: it may move to another pCPU. */
  readonly migratable: boolean;
  state: 'runnable' | 'running' | 'blocked';
  /** KVM_VCPU_PREEMPTED in the steal-time area: set at vcpu_put when scheduled out runnable. */
  preempted: boolean;
  /** vcpu->arch.preempted_in_kernel: its guest was at CPL 0 when it was preempted. */
  preemptedInKernel: boolean;
  /** What its pCPU last told other domains' pCPUs for directed yield (hostMachine): state@pCPU. */
  dyPublished: string | undefined;
  /** KVM_VCPU_FLUSH_TLB was set by these shootdowns while it was preempted. */
  deferred: FlushRequest[];
  /**
   * Its guest halted in its idle loop (an HLT exit from the guest's idle task) and has not been
   * entered since: the guest's shootdowns skip it (lazy TLB mode), so their IPIs neither wake
   * nor kick it.
   */
  guestIdle: boolean;
  /** Its guest's answer to "would a shootdown leave this vCPU out?" (absent: never). */
  readonly guest: GuestFlushView | undefined;
  /**
   * se->rel_deadline: detached for migration, it carries what is left of its request
   * (deadline − vruntime) to the other run queue instead of a fresh one (PLACE_REL_DEADLINE).
   */
  relDeadline: Time | undefined;
  /** Hyper-V flush requests queued for it (KVM's per-vCPU TLB flush FIFO), serviced at entry. */
  hvFifo: FlushRequest[];
  /** The FIFO overflowed (or a flush-all was queued): the next entry flushes everything. */
  hvFlushAll: boolean;
  /** Flush requests that kicked it out of guest mode; their senders wait for its exit. */
  hvAckOnExit: { req: FlushRequest; arrivedAt: Time }[];
  /** Generation of its HLT wake-up timer; an early wake-up makes the pending one stale. */
  wakeGen: number;
  blockedAt: Time;
  /** When it last joined the run queue (steal time starts). */
  queuedAt: Time;
  /** When it last got the pCPU. */
  ranSince: Time;
  /** When it last left the pCPU (task_hot: it stays cache-hot for `migrationCost` after). */
  stoppedAt: Time;
  readonly stats: VcpuThreadStats;
}

/** Host statistics of a pCPU that runs vCPUs. */
export interface HostSchedStats {
  /** vCPU switches (kvm_arch_vcpu_load of a vCPU other than the last one). */
  vcpuSwitches: number;
  /** IBPBs issued on vCPU switch (switch_vcpu_ibpb). */
  ibpbs: number;
  /** Kicks that forced a running vCPU out: to deliver an interrupt, or to preempt it. */
  kicks: { interrupt: number; preempt: number };
  threads: VcpuThreadStats[];
  /** Host kernel threads bound to this pCPU (`host.tasks`). */
  tasks: HostTaskStats[];
}

export interface HostSchedulerParams {
  port: Port;
  core: CoreHw;
  threads: {
    kvm: KvmVcpu;
    actor: number;
    pvTlbFlush: boolean;
    vmName: string;
    migratable: boolean;
    /** The vCPU thread's nice value (−20 … 19); absent: 0. */
    nice?: number;
    /** Its guest's answer to "would a shootdown leave this vCPU out?" (absent: never). */
    guest?: GuestFlushView;
  }[];
  /** Host kernel threads bound to this pCPU, competing with the vCPU threads. */
  tasks?: HostTaskThread[];
  slice: Time;
  /**
   * The scheduler tick's period (1/HZ), where a request's end is noticed; 0 (absent): at once,
   * as with the HRTICK sched feature. See {@link tickAfter}.
   */
  tick?: Time;
  haltPoll: Time;
  /** sysctl_sched_migration_cost: bounds newidle balancing by this pCPU's average idle time. */
  migrationCost?: Time;
  /** yield_task_fair forfeits an eligible yielder's request (Linux 6.17+); absent: true. */
  yieldForfeit?: boolean;
  /** PICK_BUDDY: schedule() honours a directed yield's next buddy; absent: true. */
  pickBuddy?: boolean;
  /** DELAY_DEQUEUE (with DELAY_ZERO): an ineligible sleeper stays queued; absent: true. */
  delayDequeue?: boolean;
  ibpbOnVcpuSwitch: boolean;
  /** End of the run (statistics close their intervals there). */
  until: Time;
}

/**
 * A pCPU's share of the host scheduler (docs/domain.md §3–§4, timing.md): a FIFO run queue of
 * vCPU threads with a time slice (EEVDF, which with equal weights and no sleeper credit reduces
 * to round robin), preemption at the end of a slice when another thread waits, HLT blocking with
 * halt polling, wake-up on an interrupt, and KVM's steal-time area (the `preempted` flag and the
 * PV TLB flush bit). The xstate machine in `hostMachine.ts` drives it; this class holds the
 * state and decisions so the machine's chart shows only the control flow.
 *
 * Threads start where the composition root placed them; `MigrationDomain` moves waiting ones
 * between the pCPUs of a last-level cache or socket (idle balancing).
 */
export class HostScheduler {
  /** The vCPU threads on this pCPU now (migration moves them between schedulers). */
  readonly threads: VcpuThread[];
  private readonly runQueue: (VcpuThread | HostTaskThread)[] = [];
  /**
   * Sleepers still on the run queue (se->sched_delayed, DELAY_DEQUEUE): they slept while not
   * eligible, so they keep competing — in the average, in the load — without being runnable,
   * until pick_eevdf would choose one (it is dequeued then, its lag zeroed) or it wakes.
   */
  private readonly delayed: (VcpuThread | HostTaskThread)[] = [];
  /** The vCPU thread on the pCPU (in guest mode or in KVM for it). */
  current: VcpuThread | undefined;
  /** The host task on the pCPU instead. */
  task: HostTaskThread | undefined;
  readonly tasks: readonly HostTaskThread[];
  /** The vCPU whose state is loaded on this pCPU (per_cpu last_vcpu). */
  private lastVcpu: VcpuThread | undefined;
  /** A host task ran since the last vCPU blocked: that vCPU's halt poll is over. */
  private taskSinceBlock = false;
  /** A waiting thread should get the pCPU at the next opportunity (need_resched). */
  needResched = false;
  /** A wake-up preempts the running host task (check_preempt_wakeup_fair): it stops at once. */
  wakePreemptsTask = false;
  /**
   * cfs_rq->next: the thread a directed yield nominated (yield_to_task_fair → set_next_buddy).
   * schedule() picks it while it is eligible (PICK_BUDDY); picking it clears it.
   */
  private nextBuddy: VcpuThread | undefined;
  /** Since when the running entity's vruntime is not yet accounted (update_curr). */
  private vSince: Time = 0;
  /** cfs_rq->zero_vruntime: the zero-lag point when nothing is on the run queue. */
  private zeroV: Time = 0;
  sliceArmed = false;
  private started = false;
  /**
   * rq->avg_idle: how long this pCPU's idle periods last, averaged (1/8 per sample, capped at
   * twice the migration cost), and when the current one began (rq->idle_stamp).
   */
  avgIdle: Time;
  private idleStamp: Time | undefined;
  readonly stats: HostSchedStats;
  private readonly hostCtx: number;

  constructor(readonly p: HostSchedulerParams) {
    this.tasks = p.tasks ?? [];
    this.avgIdle = 2 * this.migrationCost;
    this.threads = p.threads.map((t) => {
      const nice = t.nice ?? 0;
      const weight = weightOfNice(nice);
      return {
        kind: 'vcpu' as const,
        kvm: t.kvm,
        actor: t.actor,
        pvTlbFlush: t.pvTlbFlush,
        migratable: t.migratable,
        state: 'runnable',
        preempted: false,
        preemptedInKernel: false,
        dyPublished: undefined,
        deferred: [],
        guestIdle: false,
        guest: t.guest,
        relDeadline: undefined,
        hvFifo: [],
        hvFlushAll: false,
        hvAckOnExit: [],
        wakeGen: 0,
        blockedAt: 0,
        queuedAt: 0,
        ranSince: 0,
        stoppedAt: 0,
        vruntime: 0,
        deadline: calcDeltaFair(p.slice, weight),
        vlag: 0,
        weight,
        stats: {
          vm: t.vmName,
          vcpu: t.kvm.p.vcpu,
          nice,
          stealPs: 0,
          maxStealPs: 0,
          runPs: 0,
          preemptions: 0,
          wakeups: 0,
          deferredFlushes: 0,
          hvFlushes: 0,
          migrations: 0,
          pleExits: 0,
          directedYields: 0,
          boosted: 0,
        },
      };
    });
    this.runQueue.push(...this.threads);
    // Steady state at time 0: every thread but the first one to run was preempted earlier.
    for (const t of this.threads.slice(1)) t.preempted = true;
    this.stats = {
      vcpuSwitches: 0,
      ibpbs: 0,
      kicks: { interrupt: 0, preempt: 0 },
      threads: this.threads.map((t) => t.stats),
      tasks: this.tasks.map((t) => t.stats),
    };
    this.hostCtx = hostKernelContext(p.core.params.index);
  }

  /**
   * When the running thread's request ends: its virtual deadline, reached in real time at the
   * rate it runs (update_curr). A thread that ran alone past it got a new one each time
   * (update_deadline renews it a slice later), so a thread that starts waiting meets the current
   * request's end, not an instant preemption.
   */
  sliceEnd(t: VcpuThread, now: Time): Time {
    const vslice = calcDeltaFair(this.p.slice, t.weight);
    const v = this.currentV(t, now);
    if (t.deadline <= v && vslice > 0) t.deadline += (Math.floor((v - t.deadline) / vslice) + 1) * vslice;
    return now + realTimeFor(t.deadline - v, t.weight);
  }

  /**
   * When the end of a request at `t` is noticed: at once with `tick` 0 (HRTICK: an hrtimer at the
   * slice's end), else at the first scheduler tick at or after it — task_tick_fair's update_curr
   * → update_deadline → resched_curr, with every CPU's tick on the same jiffy boundaries (no
   * sched_skew_tick). Linux's default: HRTICK off, HZ 250 or 1000.
   */
  tickAfter(t: Time): Time {
    const tick = this.p.tick ?? 0;
    return tick > 0 ? Math.ceil(t / tick) * tick : t;
  }

  /** The running entity's vruntime brought up to `now` without accounting it. */
  private currentV(e: SchedEntity, now: Time): Time {
    return e.vruntime + calcDeltaFair(now - this.vSince, e.weight);
  }

  /** A thread waits for the pCPU. */
  get contended(): boolean {
    return this.runQueue.length > 0;
  }

  /**
   * At the end of the running entity's request with others waiting: would schedule() pick it
   * again? pick_eevdf keeps `curr` when it is still eligible and its renewed deadline comes
   * strictly before that of every eligible waiting entity (entity_before); then there is no
   * switch, no preemption and no `preempted` flag. Rare at equal weights (the others would all
   * have to be owed nothing), common beside a lighter thread.
   */
  keepsCurrent(now: Time): boolean {
    const cur = this.current ?? this.task;
    if (!cur || this.runQueue.length === 0) return cur !== undefined;
    const v = this.currentV(cur, now);
    const avg = this.avg(now, undefined);
    if (v > avg) return false;
    if (this.eligibleBuddy(avg) !== undefined) return false;
    const deadline = v >= cur.deadline ? v + calcDeltaFair(this.p.slice, cur.weight) : cur.deadline;
    // No waiting entity may be eligible: the running one holds the queue's average down.
    const best = pickEevdf(this.runQueue, avg);
    return best < 0 || deadline < this.runQueue[best]!.deadline;
  }

  /**
   * The vCPU thread that last ran here blocked in HLT less than `haltPoll` ago: it is still on
   * the pCPU polling (kvm_vcpu_halt), so the pCPU is not idle.
   */
  polling(now: Time): boolean {
    const t = this.lastVcpu;
    return (
      t !== undefined &&
      !this.taskSinceBlock &&
      t.state === 'blocked' &&
      t.blockedAt > 0 &&
      now - t.blockedAt < this.p.haltPoll
    );
  }

  /** When the current halt poll gives up (the pCPU then idles), if one is going on. */
  pollEnd(now: Time): Time | undefined {
    return this.polling(now) ? this.lastVcpu!.blockedAt + this.p.haltPoll : undefined;
  }

  private get migrationCost(): Time {
    return this.p.migrationCost ?? 500_000_000;
  }

  /** The pCPU goes idle now (newidle_balance sets rq->idle_stamp). */
  markIdle(now: Time): void {
    this.idleStamp ??= now;
  }

  /**
   * newidle_balance does not even look when this pCPU's idle periods are usually shorter than
   * the cost of a migration (this_rq->avg_idle < sysctl_sched_migration_cost).
   */
  get idlesBriefly(): boolean {
    return this.avgIdle < this.migrationCost;
  }

  /** Nothing runs, nothing waits, no vCPU polls: an idle pCPU that would pull work. */
  idle(now: Time): boolean {
    return (
      this.current === undefined &&
      this.task === undefined &&
      this.runQueue.length === 0 &&
      !this.polling(now)
    );
  }

  /** Waiting threads that may move to another pCPU, in queue order. */
  queuedMigratable(): readonly VcpuThread[] {
    return this.runQueue.filter((t): t is VcpuThread => t.kind === 'vcpu' && t.migratable);
  }

  /** detach_task: a waiting thread leaves this pCPU's run queue for another pCPU. */
  detach(t: VcpuThread, now: Time): void {
    const q = this.runQueue.indexOf(t);
    const i = this.threads.indexOf(t);
    if (q < 0 || i < 0)
      throw new Error(`vCPU actor ${t.actor} is not waiting on pCPU ${this.p.core.params.index}`);
    // Dequeued for migration: it takes what it is owed here to the other run queue, and what is
    // left of its request (PLACE_REL_DEADLINE, Linux 6.12+: dequeue_entity without DEQUEUE_SLEEP).
    t.vlag = lagOf(t, this.avg(now, undefined), this.p.slice);
    t.relDeadline = t.deadline - t.vruntime;
    this.runQueue.splice(q, 1);
    this.threads.splice(i, 1);
    if (t === this.nextBuddy) this.nextBuddy = undefined;
  }

  /**
   * yield_to reached this pCPU for one of its waiting threads: it becomes the next buddy
   * (set_next_buddy) and the pCPU reschedules (resched_curr) — which, when the buddy is
   * eligible, preempts whatever runs (need_resched; a running host task stops). Returns whether
   * it does.
   */
  yieldedTo(t: VcpuThread, now: Time): boolean {
    if (t.state !== 'runnable' || !this.runQueue.includes(t)) return false;
    if (this.p.pickBuddy === false) {
      // Before PICK_BUDDY (Linux 6.6–6.11) the buddy is set but pick_next_entity ignores it
      // (NEXT_BUDDY is off); resched_curr still makes this pCPU run pick_eevdf, which keeps an
      // eligible current thread (RUN_TO_PARITY) and otherwise switches to the best eligible one.
      const cur = this.current ?? this.task;
      if (!cur || this.currentV(cur, now) <= this.avg(now, undefined)) return false;
      if (cur === this.task) this.wakePreemptsTask = true;
      else this.needResched = true;
      return true;
    }
    this.nextBuddy = t;
    t.stats.boosted++;
    const cur = this.current ?? this.task;
    if (!cur || this.eligibleBuddy(this.avg(now, undefined)) === undefined) return false;
    if (cur === this.task) this.wakePreemptsTask = true;
    else this.needResched = true;
    return true;
  }

  /** The next buddy's index in the run queue, if it waits there and is eligible. */
  private eligibleBuddy(avg: Time): number | undefined {
    const b = this.nextBuddy;
    if (!b) return undefined;
    const i = this.runQueue.indexOf(b);
    return i >= 0 && b.vruntime <= avg ? i : undefined;
  }

  /** attach_task: a thread another pCPU gave up joins this run queue, still waiting (steal time). */
  attach(t: VcpuThread, now: Time): void {
    t.stats.migrations++;
    this.threads.push(t);
    this.place(t, now);
    if (t.relDeadline !== undefined) {
      // place_entity with rel_deadline: the vruntime is placed by lag, the request keeps its end.
      t.deadline = t.vruntime + t.relDeadline;
      t.relDeadline = undefined;
    }
    this.runQueue.push(t);
  }

  /** update_curr: the running entity's CPU time since the last account goes onto its vruntime. */
  private account(e: SchedEntity, now: Time): void {
    e.vruntime += calcDeltaFair(now - this.vSince, e.weight);
    this.vSince = now;
    renewDeadline(e, this.p.slice);
  }

  /**
   * avg_vruntime at `now`: over the waiting entities, the running one (its vruntime brought up
   * to date) and `also` (one about to leave the queue is still on it).
   */
  private avg(now: Time, also: SchedEntity | undefined): Time {
    const es: { vruntime: Time; weight: number }[] = this.runQueue.slice();
    for (const d of this.delayed) es.push(d);
    const cur = this.current ?? this.task;
    if (cur && cur !== also) es.push({ vruntime: this.currentV(cur, now), weight: cur.weight });
    if (also) es.push(also);
    return avgVruntime(es, this.zeroV);
  }

  /** place_entity: an entity joins this run queue with the lag it left its last one with. */
  private place(e: SchedEntity, now: Time): void {
    const cur = this.current ?? this.task;
    let load = cur?.weight ?? 0;
    for (const q of this.runQueue) load += q.weight;
    for (const q of this.delayed) load += q.weight;
    placeEntity(e, load, this.avg(now, undefined), this.p.slice);
  }

  /**
   * dequeue_entity for a sleep (DEQUEUE_SLEEP) of the entity that just ran: with DELAY_DEQUEUE
   * an entity that is not eligible (it ran ahead of the queue's average) stays queued, delayed;
   * otherwise it leaves with its lag.
   */
  private sleepDequeue(e: VcpuThread | HostTaskThread, now: Time): void {
    const avg = this.avg(now, e);
    if (this.p.delayDequeue !== false && e.vruntime > avg) this.delayed.push(e);
    else e.vlag = lagOf(e, avg, this.p.slice);
  }

  /**
   * pick_next_entity meeting delayed sleepers: while pick_eevdf (over the runnable and the
   * delayed) would choose a delayed one, that one is dequeued (DEQUEUE_DELAYED) — it is eligible
   * by then, and DELAY_ZERO drops the lag it is owed — and the pick is made again. On a pCPU
   * about to idle this empties the delayed list: a lone sleeper is at the average.
   */
  private dequeueDelayedPicks(now: Time): void {
    while (this.delayed.length > 0) {
      const all = [...this.runQueue, ...this.delayed];
      const i = pickEevdf(all, this.avg(now, undefined));
      if (i < this.runQueue.length) return;
      const e = this.delayed.splice(i - this.runQueue.length, 1)[0]!;
      e.vlag = 0;
    }
  }

  /**
   * A delayed sleeper woke (requeue_delayed_entity): it is still queued, so it keeps its
   * vruntime — and so the negative lag it slept with, if it has not run out yet — unless it is
   * owed time by now, which DELAY_ZERO drops (placed again at zero lag). Returns false if it was
   * not delayed.
   */
  private requeueDelayed(e: VcpuThread | HostTaskThread, now: Time): boolean {
    const i = this.delayed.indexOf(e);
    if (i < 0) return false;
    this.delayed.splice(i, 1);
    if (this.avg(now, e) > e.vruntime) {
      e.vlag = 0;
      this.place(e, now);
    }
    return true;
  }

  /** The thread that owns a vCPU actor (its L1 actor, or the L2 actor it runs). */
  threadOf(actor: number): VcpuThread | undefined {
    // A handful of threads per pCPU: a scan is cheaper than keeping a map in step with migration.
    return this.threads.find((t) => t.actor === actor || t.kvm.p.nested?.some((n) => n.l2Actor === actor));
  }

  /**
   * schedule(): the next thread from the run queue, or none (the pCPU idles). Returns the
   * thread and the cost of getting it running: a context switch unless it is the thread that was
   * halt-polling here, plus IBPB when a different vCPU last ran (kvm_arch_vcpu_load).
   */
  pickNext(now: Time): { thread: VcpuThread; cost: Time } | { task: HostTaskThread; cost: Time } | undefined {
    this.dequeueDelayedPicks(now);
    if (this.runQueue.length === 0) return undefined;
    // pick_eevdf: the eligible entity with the earliest deadline (first queued on a tie), which
    // is plain round robin while every thread runs whole slices.
    const avg = this.avg(now, undefined);
    this.zeroV = avg;
    // PICK_BUDDY: a directed yield's target first, while it is eligible.
    const buddy = this.eligibleBuddy(avg);
    const t = this.runQueue.splice(buddy ?? pickEevdf(this.runQueue, avg), 1)[0]!;
    if (t === this.nextBuddy) this.nextBuddy = undefined;
    renewDeadline(t, this.p.slice);
    this.vSince = now;
    this.needResched = false;
    if (this.idleStamp !== undefined) {
      // ttwu_do_activate on an idle rq: update_avg(&rq->avg_idle, delta), capped.
      this.avgIdle += Math.trunc((now - this.idleStamp - this.avgIdle) / 8);
      this.avgIdle = Math.min(this.avgIdle, 2 * this.migrationCost);
      this.idleStamp = undefined;
    }
    if (t.kind === 'task') {
      // A kernel thread: a context switch, no vcpu_load (last_vcpu stays). A vCPU halt-polling
      // here stops at once (kvm_vcpu_halt polls only while single_task_running()).
      this.task = t;
      this.taskSinceBlock = true;
      return { task: t, cost: this.p.core.timing.contextSwitch };
    }
    countSteal(t, now);
    // Halt polling: the vCPU thread never left the pCPU. Once polling gave up, the pCPU went
    // to sleep and coming back to the same thread is a context switch again.
    const polled =
      t === this.lastVcpu && !this.taskSinceBlock && t.blockedAt > 0 && now - t.blockedAt <= this.p.haltPoll;
    this.taskSinceBlock = false;
    let cost = polled ? 0 : this.p.core.timing.contextSwitch;
    if (t !== this.lastVcpu) {
      if (this.lastVcpu) this.stats.vcpuSwitches++;
      if (this.lastVcpu && this.p.ibpbOnVcpuSwitch) cost += this.ibpb();
      this.lastVcpu = t;
    }
    t.state = 'running';
    t.ranSince = now;
    if (!this.started) {
      // The run starts in steady state: the first thread is somewhere in its slice already, at
      // a point drawn from this pCPU's stream. Without it every core would switch at the same
      // instants and the VMs would be gang-scheduled by accident.
      this.started = true;
      // Only where another thread may ever share the pCPU (a draw shifts this pCPU's stream).
      const shared = this.threads.length + this.tasks.length > 1 || this.threads.some((x) => x.migratable);
      if (shared)
        t.deadline =
          t.vruntime + calcDeltaFair(this.p.slice - this.p.port.rng.int(0, this.p.slice - 1), t.weight);
    }
    t.blockedAt = 0;
    this.current = t;
    return { thread: t, cost };
  }

  /** record_steal_time at entry: clear the flags; a set KVM_VCPU_FLUSH_TLB asks for a guest flush. */
  recordStealTime(t: VcpuThread): FlushRequest[] {
    t.preempted = false;
    const deferred = t.deferred;
    t.deferred = [];
    // kvm_vcpu_flush_tlb_guest, unless a (deliberately broken) policy forgets it.
    const honour = t.kvm.p.policy.honourPvFlush?.().value ?? true;
    if (deferred.length > 0 && honour) t.kvm.request('TLB_FLUSH_GUEST');
    return deferred;
  }

  /** vcpu_put of a thread that is still runnable: back on the run queue, marked preempted. */
  preemptCurrent(now: Time): void {
    const t = this.current!;
    this.account(t, now);
    t.stats.runPs += now - t.ranSince;
    t.stoppedAt = now;
    t.stats.preemptions++;
    t.state = 'runnable';
    t.preempted = true;
    // kvm_arch_vcpu_put: the snapshot directed yield reads (the CPL of its last exit).
    t.preemptedInKernel = t.kvm.inKernelAtExit;
    t.kvm.scheduledOut = true;
    t.queuedAt = now;
    this.runQueue.push(t);
    this.current = undefined;
  }

  /**
   * yield_to after a PAUSE exit found a candidate: yield_task_fair, then schedule(). Since
   * Linux 6.17 (79104becf42b, "sched/fair: Forfeit vruntime on yield") an eligible yielder
   * forfeits the rest of its request — its vruntime jumps to its deadline and the next request
   * begins — so what it was owed goes to the others; an ineligible one changes nothing. With
   * `yieldForfeit: false`, the rule before it: only the deadline moves a slice on and the
   * yielder keeps its lag. (A spinner that PAUSE-exits, yields and is picked again as the only
   * eligible thread then pushes its deadline out by a slice at every exit, and once the spin ends
   * keeps the pCPU for as many slices while its neighbour waits — what the 6.17 change fixed.)
   * It is scheduled out runnable, so KVM marks it preempted (in kernel mode).
   */
  yieldCurrent(now: Time): void {
    const t = this.current!;
    t.stats.directedYields++;
    this.account(t, now);
    const vslice = calcDeltaFair(this.p.slice, t.weight);
    if (this.p.yieldForfeit === false) {
      t.deadline += vslice;
    } else if (t.vruntime <= this.avg(now, undefined)) {
      t.vruntime = t.deadline;
      t.deadline += vslice;
    }
    this.preemptCurrent(now);
  }

  /** kvm_vcpu_block after HLT: the thread sleeps until its timer or an interrupt. */
  blockCurrent(now: Time): VcpuThread {
    const t = this.current!;
    this.account(t, now);
    this.sleepDequeue(t, now);
    t.stats.runPs += now - t.ranSince;
    t.stoppedAt = now;
    t.state = 'blocked';
    t.blockedAt = now;
    t.wakeGen++;
    t.kvm.scheduledOut = true;
    this.current = undefined;
    return t;
  }

  /**
   * The first wake-up of each host task: a point of its first period drawn from this pCPU's
   * stream (the run starts in steady state, and tasks on different pCPUs are not in phase).
   */
  taskPhases(): { task: HostTaskThread; at: Time }[] {
    return this.tasks.map((task) => ({ task, at: this.p.port.rng.int(0, task.spec.every - 1) }));
  }

  /** A host task's timer fired: it joins the run queue. */
  wakeTask(t: HostTaskThread, now: Time): void {
    t.wake(now);
    if (!this.requeueDelayed(t, now)) this.place(t, now);
    this.runQueue.push(t);
    this.checkPreemptWakeup(t, now);
  }

  /** The running host task used its burst: it sleeps. Returns when it wakes next. */
  sleepTask(now: Time): { task: HostTaskThread; wakeAt: Time } {
    const task = this.task!;
    this.account(task, now);
    this.wakePreemptsTask = false;
    this.sleepDequeue(task, now);
    this.task = undefined;
    return { task, wakeAt: task.sleep(now) };
  }

  /** The running host task starts (or resumes) its burst; returns when its stretch ends. */
  startTask(now: Time, port: { observe(kind: string, data: unknown): void }): Time {
    return this.task!.start(now, this.p.slice, port);
  }

  /**
   * The running host task's stretch ended at a slice's end: does another thread wait that
   * schedule() would pick instead of it ({@link keepsCurrent})?
   */
  taskContended(now: Time): boolean {
    return this.runQueue.length > 0 && !this.keepsCurrent(now);
  }

  /** Nothing waits: the task runs on. Returns when the next stretch ends. */
  runTaskOn(now: Time): Time {
    const task = this.task!;
    const end = task.runOn(now, this.p.slice);
    // A stretch cut by the slice ends at the tick that notices it (or with the burst, if sooner).
    if (end - now < this.p.slice) return end;
    return Math.min(now + task.remainingAt(now), this.tickAfter(end));
  }

  /** Others wait: the task is preempted mid-burst and queues behind them. */
  preemptTask(now: Time): void {
    const task = this.task!;
    this.account(task, now);
    this.wakePreemptsTask = false;
    this.task = undefined;
    task.preempt(now);
    this.runQueue.push(task);
  }

  /** kvm_vcpu_wake_up: a blocked thread becomes runnable. Returns false if it was not blocked. */
  wake(t: VcpuThread, now: Time, byInterrupt: boolean): boolean {
    if (t.state !== 'blocked') return false;
    if (byInterrupt) t.stats.wakeups++;
    t.wakeGen++;
    t.state = 'runnable';
    t.queuedAt = now;
    if (!this.requeueDelayed(t, now)) this.place(t, now);
    this.runQueue.push(t);
    this.checkPreemptWakeup(t, now);
    return true;
  }

  /**
   * check_preempt_wakeup_fair: the running vCPU thread is preempted (need_resched) when the
   * woken entity is what pick_eevdf would now choose. RUN_TO_PARITY protects it while it is still
   * eligible; a woken entity owed CPU time lowers the average and may make it ineligible. The
   * running entity may be a host task: it is then preempted mid-burst ({@link wakePreemptsTask}).
   */
  private checkPreemptWakeup(e: SchedEntity, now: Time): void {
    const cur = this.current ?? this.task;
    if (!cur) return;
    // With a tick, the running entity's request may have ended unnoticed: this wake-up's
    // update_curr notices it (update_deadline → resched_curr), and schedule() keeps it only if
    // pick_eevdf still would. Without one the slice timer acted at the end itself.
    if ((this.p.tick ?? 0) > 0 && this.currentV(cur, now) >= cur.deadline && !this.keepsCurrent(now)) {
      if (cur === this.task) this.wakePreemptsTask = true;
      else this.needResched = true;
      return;
    }
    const avg = this.avg(now, undefined);
    if (this.currentV(cur, now) <= avg) return;
    // pick_eevdf sees the delayed sleepers too: one of them may be the pick.
    const all = this.delayed.length > 0 ? [...this.runQueue, ...this.delayed] : this.runQueue;
    if (all[pickEevdf(all, avg)] !== e) return;
    if (cur === this.task) this.wakePreemptsTask = true;
    else this.needResched = true;
  }

  /**
   * A shootdown's flush IPI for a thread that is not running. With PV TLB flush and the thread
   * preempted, the guest's cmpxchg on its steal-time word succeeds: KVM_VCPU_FLUSH_TLB is set,
   * no interrupt is sent, and the initiator does not wait (kvm_flush_tlb_multi). Returns the
   * acknowledgement the initiator reads, or undefined when the interrupt must be delivered.
   */
  deferFlush(t: VcpuThread, intr: GuestInterrupt, now: Time): FlushAck | undefined {
    if (!(t.pvTlbFlush && t.preempted && intr.kind === 'flush' && intr.req)) return undefined;
    t.deferred.push(intr.req);
    t.stats.deferredFlushes++;
    this.observeDeferral(t, intr.req, 'pv');
    return { id: intr.req.id, arrivedAt: now, handledAt: now, ackedAt: now, deferred: true };
  }

  /**
   * kvm_hv_flush_tlb for one target: the request joins its TLB flush FIFO (16 entries, one per
   * page here; an overflow becomes a flush of everything) with KVM_REQ_HV_TLB_FLUSH. KVM waits
   * only for targets in guest mode (KVM_REQUEST_WAIT): those are kicked, and acknowledge when they
   * exit; any other target acknowledges at once, since it flushes before it next enters.
   */
  queueHvFlush(t: VcpuThread, req: FlushRequest, now: Time, inGuest: boolean): FlushAck | undefined {
    t.hvFifo.push(req);
    t.stats.hvFlushes++;
    this.observeDeferral(t, req, 'hyperv');
    if (t.hvFifo.reduce((n, r) => n + r.pages.length, 0) > HV_TLB_FLUSH_FIFO_SIZE) t.hvFlushAll = true;
    if (inGuest && t === this.current) {
      t.hvAckOnExit.push({ req, arrivedAt: now });
      return undefined;
    }
    return { id: req.id, arrivedAt: now, handledAt: now, ackedAt: now, deferred: true };
  }

  /** The current thread left guest mode: the Hyper-V flushes that kicked it are acknowledged. */
  hvExitAcks(t: VcpuThread, now: Time): { to: number; ack: FlushAck }[] {
    const acks = t.hvAckOnExit.map(({ req, arrivedAt }) => ({
      to: req.from,
      ack: { id: req.id, arrivedAt, handledAt: now, ackedAt: now, deferred: false },
    }));
    t.hvAckOnExit = [];
    return acks;
  }

  /**
   * kvm_hv_vcpu_flush_tlb before entry: INVLPGA per queued page (svm_flush_tlb_gva: no RAP
   * clear), or, after an overflow, a guest flush (kvm_vcpu_flush_tlb_guest, which `linux-7.0`
   * turns into a pending RAP clear). Returns the requests (the guest learns their changes) and
   * the time spent.
   */
  serviceHvFlush(t: VcpuThread): { reqs: FlushRequest[]; cost: Time } {
    const reqs = t.hvFifo;
    if (reqs.length === 0) return { reqs, cost: 0 };
    t.hvFifo = [];
    let cost = 0;
    if (t.hvFlushAll) {
      t.kvm.request('TLB_FLUSH_GUEST');
      t.hvFlushAll = false;
    } else {
      for (const r of reqs)
        for (const page of r.pages) cost += this.p.core.invlpga(t.kvm.vmcb01.asid, r.pcid, page);
    }
    return { reqs, cost };
  }

  /** At the end of the run: close the open intervals so the statistics cover the whole run. */
  finish(now: Time): void {
    this.stats.threads = this.threads.map((t) => t.stats);
    for (const t of this.tasks) t.finish(now);
    for (const t of this.threads) {
      if (t.state === 'running') {
        t.stats.runPs += now - t.ranSince;
        t.ranSince = now;
      } else if (t.state === 'runnable') {
        countSteal(t, now);
        t.queuedAt = now;
      }
    }
  }

  /**
   * An L2 shootdown deferred by PV TLB flush inside this (L1) vCPU thread: counted on it (L1
   * did the deferring) and reported for the L2 vCPU whose kernel context is `l2Ctx`.
   */
  noteNestedDeferral(t: VcpuThread, req: FlushRequest, l2Ctx: number): void {
    t.stats.deferredFlushes++;
    this.observeDeferral(t, req, 'pv', l2Ctx);
  }

  /**
   * A shootdown left this target's flush to the host (the checker names it if the flush is lost),
   * reported for the target's guest kernel, or for `ctx` (an L2's).
   */
  private observeDeferral(t: VcpuThread, req: FlushRequest, path: 'pv' | 'hyperv', ctx?: number): void {
    const obs: ShootdownDeferredObs = {
      id: req.id,
      pcpu: this.p.core.params.index,
      ctx: ctx ?? t.kvm.guestKernelCtx,
      path,
    };
    this.p.port.observe(ObsKind.SHOOTDOWN_DEFERRED, obs);
  }

  /** IBPB on vCPU switch: on ERAPS parts with `ibpbClearsRap` it also clears the RAP. */
  private ibpb(): Time {
    const core = this.p.core;
    const r = core.ibpb();
    this.stats.ibpbs++;
    if (r.effect.cleared) {
      const obs: ActionObs = {
        pcpu: core.params.index,
        ctx: this.hostCtx,
        action: 'ibpb',
        handling: 'native',
        cleared: true,
        microarch: false,
        detail: 'IBPB on vCPU switch (kvm_arch_vcpu_load, switch_vcpu_ibpb)',
      };
      this.p.port.observe(ObsKind.ACTION, obs);
    }
    return r.cost;
  }
}

/** A wait for the pCPU ends (or the run does): steal time, and the longest wait so far. */
function countSteal(t: VcpuThread, now: Time): void {
  const wait = now - t.queuedAt;
  t.stats.stealPs += wait;
  t.stats.maxStealPs = Math.max(t.stats.maxStealPs, wait);
}
