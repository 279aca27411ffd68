import type { Port } from '../actors/hostedActor.js';
import { Priority } from '../actors/priority.js';
import type { Time } from '../actors/time.js';
import type { CoreHw } from '../hw/core.js';
import type {
  CpuSoftware,
  FlushAck,
  FlushRequest,
  FlushSkip,
  GuestFlushView,
  StepPlan,
} from '../hw/cpuSoftware.js';
import type { GuestExit, GuestIpi, NestedInterrupt } from '../hw/exit.js';
import { type ActionHandling, type ActionObs, ObsKind } from '../hw/observations.js';
import type { LinuxOs } from '../os/linuxOs.js';
import { EXIT_HANDLERS } from './exitHandlers.js';
import type { GuestCr0, GuestCr4, Hypervisor, KvmRequest } from './hypervisor.js';
import type { EffectiveCpuid } from './kvmVcpu.js';
import type { ErapsPolicy } from './policies/index.js';

/**
 * An L1 guest hypervisor's KVM for one L2 vCPU (docs/domain.md §3, "Nested SVM"): the same
 * generic paths and exit table as L0, with L1's own policy, writing vmcb12 — a VMCB in L1's
 * memory that the hardware never sees. L1's VMRUN of it exits to L0, which emulates it.
 */
export class NestedKvm implements Hypervisor {
  readonly vmcb12 = { allowLargerRap: false, clearRap: false };
  readonly requests = new Set<KvmRequest>();
  pendingRapClear = false;
  /** L2's CR3 as L1's KVM knows it (see KvmVcpu.guestCr3). */
  guestCr3 = 1;
  readonly guestCr4: GuestCr4 = { pge: true, pse: true, pae: true, pcide: true, pke: false, smep: true };
  readonly guestCr0: GuestCr0 = { pg: true, wp: true };

  constructor(
    readonly core: CoreHw,
    readonly p: {
      npt: boolean;
      policy: ErapsPolicy;
      port: Port;
      l1HasEraps: boolean;
      l2Cpuid: EffectiveCpuid;
    },
  ) {
    const allow = p.policy.allowLargerRap({ hostHasEraps: p.l1HasEraps, guestHasEraps: p.l2Cpuid.eraps });
    this.vmcb12.allowLargerRap = allow.value && p.l1HasEraps;
  }

  request(r: KvmRequest): void {
    this.requests.add(r);
  }

  markPending(_why: string): void {
    this.pendingRapClear = true;
  }

  reportGuestAction(
    exit: GuestExit,
    action: ActionObs['action'],
    handling: ActionHandling,
    path: string,
  ): void {
    const obs: ActionObs = {
      pcpu: this.core.params.index,
      ctx: exit.ctx,
      action,
      handling,
      cleared: false,
      microarch: false,
      detail: `${exit.detail}; reflected to the L1 hypervisor (policy ${this.p.policy.name}): ${path}`,
    };
    this.p.port.observe(ObsKind.ACTION, obs);
  }

  /**
   * L1's KVM handles an L2 exit that L0 reflected to it: how long L2 blocks (HLT), and the
   * interrupts it must deliver to L2 vCPUs (the L2's KVM_HC_SEND_IPI or x2APIC ICR write).
   */
  handleReflected(exit: GuestExit): { blockFor: Time; send: GuestIpi | undefined } {
    if (this.p.npt) this.guestCr3 = this.core.pcid;
    const r = EXIT_HANDLERS[exit.reason](this, exit);
    return { blockFor: r.blockFor ?? 0, send: r.send };
  }

  /**
   * INIT for this L2 vCPU, as L1's KVM emulates it (kvm_apic_accept_events → kvm_vcpu_reset with
   * init_event, as L0 does for an L1, KvmVcpu.initReset): CR3 marked dirty — with L1's policy,
   * a pending RAP clear for vmcb12 — and a guest TLB flush, both serviced at L1's next VMRUN of
   * this L2.
   */
  initReset(ctx: number): void {
    const d = this.p.policy.pendingClear('cr3-dirty');
    if (d.value) this.markPending(d.step);
    this.request('TLB_FLUSH_GUEST');
    const exit: GuestExit = {
      reason: 'intr',
      ctx,
      detail: 'INIT IPI (an x2APIC ICR write by another L2 vCPU)',
    };
    const path = `kvm_vcpu_reset (init_event): CR3 marked dirty, KVM_REQ_TLB_FLUSH_GUEST raised; ${
      d.value ? d.step : `policy ${this.p.policy.name} leaves no RAP clear pending`
    }`;
    this.reportGuestAction(exit, 'init', 'intercepted', path);
  }

  /** L1's vcpu_enter_guest for L2: service requests, let L1's policy set vmcb12's CLEAR_RAP. */
  prepareVmrun(): { allowLargerRap: boolean; clearRap: boolean } {
    if (this.requests.delete('TLB_FLUSH_GUEST')) {
      if (this.p.policy.pendingClear('flush-tlb-guest').value) this.pendingRapClear = true;
    }
    this.requests.clear();
    const clear = this.p.policy.clearRapAtVmrun({
      pending: this.pendingRapClear,
      guestHasEraps: this.p.l2Cpuid.eraps,
    });
    this.vmcb12.clearRap = clear.value && this.p.l1HasEraps;
    const bits = { ...this.vmcb12 };
    this.vmcb12.clearRap = false;
    this.pendingRapClear = false;
    return bits;
  }
}

/** One L2 vCPU that an L1 vCPU runs: its VM index, its actor, and L1's KVM state for it. */
export interface L2Slot {
  index: number;
  /** Actor index of the L2 vCPU. */
  actor: number;
  /** Encoded context of the L2's kernel (for what L1's KVM reports on its behalf). */
  kernelCtx: number;
  kvm: NestedKvm;
  /** The L2 vCPU's guest, for whether a flush IPI for it was sent at all (should_flush_tlb). */
  guest: GuestFlushView;
  /** L1's KVM offers its L2 PV TLB flush (KVM_FEATURE_PV_TLB_FLUSH, the L2 VM's pvTlbFlush). */
  pvTlbFlush: boolean;
}

/**
 * How an L1 vCPU reaches the L2 vCPUs of its L2 VMs: the L1 vCPU that runs each (by L2 actor),
 * this L1 vCPU's own actor and port (an interrupt for an L2 it runs itself needs no kick), and
 * what L1's KVM spends per target on the way (kvm_apic_set_irq and kvm_vcpu_kick).
 */
export interface L2Interrupts {
  l1ActorOf: (l2Actor: number) => number;
  self: number;
  port: Port;
  perTarget: Time;
}

/**
 * The software of an L1 vCPU that is itself a hypervisor: L1's OS (its own processes) and L1's
 * KVM running L2 vCPUs — one per L2 VM of this L1. L1 enters an L2 at boot (or at its script's
 * `vmrun`), handles the L2 exits L0 reflects to it and re-enters that L2; L1's scheduler moves to
 * the next runnable L2 when the current one halts or has used its slice (checked at its exits,
 * when L1 has the CPU); while every L2 is blocked in HLT, L1's own processes run.
 */
export class L1Hypervisor implements CpuSoftware {
  /** Per L2: blocked in HLT until this time (0: runnable; Infinity: not entered by the script yet). */
  private readonly blockedUntil: number[];
  private cur = 0;
  private inL2 = false;
  private ranSince = 0;
  /**
   * Kicks L1's KVM still has to send for interrupts an L2 vCPU sent (one IPI per L1 vCPU that
   * runs a target, as kvm_vcpu_kick sends one per vCPU), and what L1 does once they are out:
   * enter that L2 (its index), or run L1's own processes (undefined).
   */
  private readonly kicks: { to: number; forL2: NestedInterrupt }[] = [];
  private kicking = false;
  private afterKicks: number | undefined;
  /**
   * Per L2: L1 scheduled it out while it was runnable (kvm_steal_time_set_preempted in L1's
   * KVM, at vcpu_put of a preempted thread), until L1 enters it again.
   */
  private readonly preempted: boolean[];
  /** Per L2: shootdowns its initiators deferred (KVM_VCPU_FLUSH_TLB), for L1's next VMRUN of it. */
  private readonly deferred: FlushRequest[][];

  constructor(
    private readonly os: LinuxOs,
    private readonly l2s: readonly L2Slot[],
    private readonly l1Ctx: number,
    private readonly autoEnter: boolean,
    /** L1's scheduler slice between its L2 vCPU threads, and its tick (0: slices end exactly). */
    private readonly slice: Time,
    private readonly tick: Time,
    private readonly l2Interrupts: L2Interrupts,
  ) {
    // Without autoEnter an L2 runs only once L1's script executes its VMRUN.
    this.blockedUntil = l2s.map(() => (autoEnter ? 0 : Number.POSITIVE_INFINITY));
    this.preempted = l2s.map(() => false);
    this.deferred = l2s.map(() => []);
  }

  start(now: Time): StepPlan {
    const plan = this.os.start(now);
    if (!this.autoEnter) return plan;
    this.os.suspend(now);
    return this.enterL2(0, now);
  }

  step(now: Time): StepPlan {
    if (this.kicking) return this.nextKick(now);
    const next = this.runnable(now, this.cur);
    if (!this.inL2 && next !== undefined) {
      this.os.suspend(now);
      return this.enterL2(next, now);
    }
    const plan = this.os.step(now);
    if (plan.kind === 'exit' && plan.exits.some((e) => e.reason === 'vmrun')) {
      return {
        kind: 'exit',
        exits: plan.exits.map((e) => {
          if (e.reason !== 'vmrun') return e;
          const k = this.l2s.findIndex((l) => l.index === e.arg);
          this.beforeEntry(Math.max(0, k), now);
          this.cur = Math.max(0, k);
          this.inL2 = true;
          this.ranSince = now;
          this.blockedUntil[this.cur] = 0;
          const timer = this.timerAt(this.cur, now);
          return {
            ...e,
            vmcb12: this.l2s[this.cur]!.kvm.prepareVmrun(),
            ...(timer === undefined ? {} : { l1TimerAt: timer }),
          };
        }),
      };
    }
    return this.wakeBefore(plan, now);
  }

  resume(now: Time, reflected?: GuestExit): StepPlan {
    if (!reflected) {
      if (this.kicking) return this.nextKick(now);
      if (this.inL2) {
        // L0 resumed L1 after a nested #VMEXIT that L1 has already handled: nothing to do.
        return this.enterL2(this.cur, now);
      }
      return this.runL1(now);
    }
    const slot = this.l2s[this.cur]!;
    // An L1 that was not given ERAPS cannot rely on hardware separation from its L2 (both run
    // in guest mode): its KVM fills the RAP on every #VMEXIT (docs/domain.md §3, "If L1's CPUID
    // lacks ERAPS, L1 must stuff the RAP itself").
    if (!slot.kvm.p.l1HasEraps) this.os.stuffForVmexit(now);
    const { blockFor, send } = slot.kvm.handleReflected(reflected);
    if (blockFor > 0) this.blockedUntil[this.cur] = now + blockFor;
    const sliceOver = now - this.ranSince >= this.slice;
    const next =
      blockFor > 0 || sliceOver
        ? (this.runnable(now, this.cur + 1) ?? (blockFor > 0 ? undefined : this.cur))
        : this.cur;
    if (send) this.deliverToL2(send, now);
    if (this.kicks.length > 0) {
      this.kicking = true;
      this.afterKicks = next;
      return this.nextKick(now);
    }
    return this.continueWith(next, now);
  }

  noteL2Interrupt(forL2: NestedInterrupt, _now: Time): boolean {
    const k = this.slotOf(forL2);
    if (k < 0) throw new Error(`a kick for L2 vCPU actor ${forL2.actor}, which this L1 vCPU does not run`);
    // A flush the L2's initiator leaves out (lazy TLB, another mm): the L2 vCPU answers it itself
    // and stays as it is. (L0's delivery already keeps such a kick from this vCPU; this is the
    // same rule for whatever reaches L1 another way.)
    if (this.l2FlushSkipped(forL2)) return false;
    // INIT is the reset L1's KVM emulates for that L2 vCPU (kvm_apic_accept_events).
    if (forL2.interrupt.kind === 'init') this.l2s[k]!.kvm.initReset(this.l2s[k]!.kernelCtx);
    // kvm_vcpu_kick wakes an L2 vCPU halted in L1's KVM (kvm_vcpu_block); one L1's script has not
    // entered yet stays out.
    const b = this.blockedUntil[k]!;
    if (b > 0 && Number.isFinite(b)) this.blockedUntil[k] = 0;
    // L1 runs its own processes: the woken L2 vCPU thread preempts them (the kick is a
    // reschedule IPI; check_preempt_wakeup). Inside an L2 or L1's KVM, L1 is at its scheduler
    // at the next reflected exit anyway.
    return !this.inL2 && !this.kicking && this.blockedUntil[k] === 0;
  }

  l2FlushSkipped(forL2: NestedInterrupt): boolean {
    const { kind, req } = forL2.interrupt;
    const slot = this.l2s[this.slotOf(forL2)];
    return kind === 'flush' && req !== undefined && slot?.guest.flushSkip(req) !== undefined;
  }

  deferL2Flush(forL2: NestedInterrupt, _now: Time): number | undefined {
    const { kind, req } = forL2.interrupt;
    const k = this.slotOf(forL2);
    const slot = this.l2s[k];
    // kvm_flush_tlb_multi in the L2: a target whose steal-time word says preempted gets
    // KVM_VCPU_FLUSH_TLB and no IPI (its cmpxchg succeeds: L1 is not entering it meanwhile).
    if (!slot?.pvTlbFlush || kind !== 'flush' || !req || !this.preempted[k]) return undefined;
    this.deferred[k]!.push(req);
    return slot.kernelCtx;
  }

  onFlushIpi(req: FlushRequest, now: Time): { cost: Time; handledAt: Time; exits: GuestExit[] } {
    return this.os.onFlushIpi(req, now);
  }
  flushSkip(req: FlushRequest): FlushSkip | undefined {
    // While L1 runs an L2 (or its KVM sends kicks for one) its own OS is not in its idle loop,
    // and the CPU is in L1's KVM, on the VMM's address space: L1's shootdowns interrupt it.
    return this.inL2 ? undefined : this.os.flushSkip(req);
  }
  onSkippedFlush(req: FlushRequest, how: FlushSkip, now: Time): void {
    this.os.onSkippedFlush(req, how, now);
  }
  deschedule(now: Time): void {
    this.os.deschedule(now);
  }
  reschedule(now: Time): void {
    this.os.reschedule(now);
  }
  inKernel(now: Time): boolean {
    return this.os.inKernel(now);
  }
  learnDeferredFlush(req: FlushRequest): void {
    this.os.learnDeferredFlush(req);
  }
  onIpi(from: number, now: Time): Time {
    return this.os.onIpi(from, now);
  }
  onInit(from: number, now: Time): Time {
    return this.os.onInit(from, now);
  }
  onShootdownComplete(
    req: FlushRequest,
    targets: number[],
    now: Time,
    critical: FlushAck | undefined,
    interrupted: number,
  ): StepPlan {
    return this.os.onShootdownComplete(req, targets, now, critical, interrupted);
  }
  onSyncpoint(name: string, now: Time): StepPlan | undefined {
    return this.os.onSyncpoint(name, now);
  }
  stats(): unknown {
    return this.os.stats();
  }

  /**
   * L1's KVM delivers an L2's IPI (kvm_pv_send_ipi or kvm_apic_send_ipi → kvm_apic_set_irq):
   * each target's vAPIC gets the interrupt, then the L1 vCPU that runs it is kicked — an IPI of
   * L1's own, through L0 (a hypercall exit, or AVIC) — unless that is this vCPU, which injects
   * it at its next VMRUN of the target without one.
   */
  private deliverToL2(send: GuestIpi, now: Time): void {
    const { l1ActorOf, self, port } = this.l2Interrupts;
    for (const target of send.targets) {
      const forL2: NestedInterrupt = { actor: target, interrupt: send.interrupt };
      const l1 = l1ActorOf(target);
      if (l1 !== self) {
        this.kicks.push({ to: l1, forL2 });
        continue;
      }
      this.noteL2Interrupt(forL2, now);
      const msg = { interrupt: send.interrupt, arrivedAt: now, doorbell: false, waiting: true };
      // 1 ps: this runs in a world-switch event, which an interrupt must not sort before.
      port.send(target, 'INTR', msg, 1, Priority.INTERRUPT);
    }
  }

  /** Index of the L2 slot an interrupt is for (-1: not an L2 vCPU this L1 vCPU runs). */
  private slotOf(forL2: NestedInterrupt): number {
    return this.l2s.findIndex((l) => l.actor === forL2.actor);
  }

  /** The next kick L1's KVM sends; when all are out, what it was going to do. */
  private nextKick(now: Time): StepPlan {
    const k = this.kicks.shift();
    if (k)
      return { kind: 'ipi', to: k.to, sendDelay: 1, at: now + this.l2Interrupts.perTarget, forL2: k.forL2 };
    this.kicking = false;
    return this.continueWith(this.afterKicks, now);
  }

  /** Enter L2 `next`, or, with every L2 blocked in HLT, run L1's own processes until one wakes. */
  private continueWith(next: number | undefined, now: Time): StepPlan {
    if (next === undefined) {
      this.inL2 = false;
      return this.runL1(now);
    }
    return this.enterL2(next, now);
  }

  /**
   * L1's own processes continue; where L1's OS would halt, an L2 vCPU that is runnable (an
   * interrupt woke it) is entered instead.
   */
  private runL1(now: Time): StepPlan {
    const plan = this.os.resume(now);
    const next = this.runnable(now, this.cur);
    if (next === undefined || plan.kind !== 'halt') return this.wakeBefore(plan, now);
    this.os.suspend(now);
    return this.enterL2(next, now);
  }

  /** L1 executes VMRUN of the chosen L2's vmcb12: a #VMEXIT to L0, which emulates it. */
  private enterL2(k: number, now: Time): StepPlan {
    if (k !== this.cur || !this.inL2) this.ranSince = now;
    this.beforeEntry(k, now);
    this.cur = k;
    this.inL2 = true;
    this.blockedUntil[k] = 0;
    const slot = this.l2s[k]!;
    const timer = this.timerAt(k, now);
    const exit: GuestExit = {
      reason: 'vmrun',
      arg: slot.index,
      vmcb12: slot.kvm.prepareVmrun(),
      ctx: this.l1Ctx,
      detail: `L1 KVM: VMRUN of vmcb12 (L2 VM ${slot.index})`,
      ...(timer === undefined ? {} : { l1TimerAt: timer }),
    };
    return { kind: 'exit', exits: [exit] };
  }

  /**
   * L1 is about to enter L2 `k`. The L2 it leaves for another while still runnable is preempted
   * (its steal-time word says so to the L2's initiators); `k` is not, and L1's record_steal_time
   * services the flushes deferred to it: kvm_vcpu_flush_tlb_guest (KVM_REQ_TLB_FLUSH_GUEST for
   * vmcb12, before prepareVmrun) — the nested VMRUN flushes the shared ASID anyway — and the L2
   * learns their page-table changes before the VMRUN reaches it.
   */
  private beforeEntry(k: number, _now: Time): void {
    if (this.inL2 && k !== this.cur && this.blockedUntil[this.cur] === 0) this.preempted[this.cur] = true;
    this.preempted[k] = false;
    const deferred = this.deferred[k]!;
    if (deferred.length === 0) return;
    const slot = this.l2s[k]!;
    if (slot.kvm.p.policy.honourPvFlush?.().value ?? true) slot.kvm.request('TLB_FLUSH_GUEST');
    this.l2Interrupts.port.send(
      slot.actor,
      'DEFERRED_FLUSHES',
      { deferred: [...deferred] },
      1,
      Priority.WORLD_SWITCH,
    );
    deferred.length = 0;
  }

  /**
   * When L1's scheduler must interrupt L2 `k` to look again (at the slice's end, or at the first
   * tick after it, as L0's slices end: `host.scheduler.tick`): once the slice is over and another
   * L2 vCPU of this L1 vCPU is runnable, or its HLT has ended. None while no other could be — L1
   * then stays with `k` until its next exit. The interrupt is L1's: the L2 leaves by a nested
   * EXIT_INTR.
   */
  private timerAt(k: number, now: Time): Time | undefined {
    let other = Number.POSITIVE_INFINITY;
    this.blockedUntil.forEach((b, i) => {
      if (i !== k && Number.isFinite(b)) other = Math.min(other, Math.max(b, now));
    });
    if (!Number.isFinite(other)) return undefined;
    const at = Math.max(this.ranSince + this.slice, other, now + 1);
    // L1 is a Linux guest with the host's scheduler settings: its tick notices the slice's end.
    return this.tick > 0 ? Math.ceil(at / this.tick) * this.tick : at;
  }

  /** The first L2 not blocked at `now`, in round-robin order from `from`. */
  private runnable(now: Time, from: number): number | undefined {
    const n = this.l2s.length;
    for (let i = 0; i < n; i++) {
      const k = (from + i) % n;
      if (this.blockedUntil[k]! <= now) return k;
    }
    return undefined;
  }

  /** Makes sure L1 gets a step when an L2's HLT timer fires, or soon when one is runnable already. */
  private wakeBefore(plan: StepPlan, now: Time): StepPlan {
    const runnableNow = !this.inL2 && this.runnable(now, this.cur) !== undefined;
    const timers = this.blockedUntil.filter((t) => t > 0 && Number.isFinite(t));
    const wake = Math.min(...timers, runnableNow ? now + 1 : Number.POSITIVE_INFINITY);
    if (!Number.isFinite(wake)) return plan;
    if (plan.kind === 'run') return { kind: 'run', at: Math.min(plan.at, wake) };
    if (plan.kind === 'idle') return { kind: 'run', at: wake };
    // L1's own idle HLT ends when the L2 vCPU's timer fires in L1 (an hrtimer interrupt).
    if (plan.kind === 'halt') return { ...plan, until: Math.min(plan.until, wake) };
    return plan;
  }
}
