import type { Port } from '../actors/hostedActor.js';
import type { Time } from '../actors/time.js';
import { encodeContext, KERNEL_PROCESS, STUFF_PROCESS } from '../hw/context.js';
import type { CoreHw, RapEffect } from '../hw/core.js';
import type { CpuSoftware, FlushAck, FlushRequest, FlushSkip, StepPlan } from '../hw/cpuSoftware.js';
import type { GuestExit } from '../hw/exit.js';
import type { Instruction } from '../hw/instruction.js';
import {
  type ActionObs,
  ObsKind,
  type RapUseObs,
  type ShootdownCompleteObs,
  type ShootdownDeferredObs,
  type ShootdownStartObs,
  type StuffObs,
  type TlbStaleUseObs,
} from '../hw/observations.js';
import type { Cpu } from './cpu.js';
import type { ScriptOp, WorkloadParams } from './workload.js';

/** What the OS reads from its CPUID (the host's on bare metal, the effective one in a guest). */
export interface OsCpuid {
  eraps: boolean;
  /** RAP entries the OS believes it must overwrite: RapSize×8 with ERAPS, else 32. */
  rapEntries: number;
  pcid: boolean;
  invpcid: boolean;
}

export interface LinuxOsParams {
  /** The CPU the OS runs on: a bare-metal core or a vCPU. */
  cpu: Cpu;
  port: Port;
  cpuid: OsCpuid;
  workload: WorkloadParams;
  /** Processes with a thread on this core (their address spaces may run here). */
  processes: number[];
  /** For each process, the actor indices of the CPUs where it has threads (its mm_cpumask). */
  cpumask: (process: number) => readonly number[];
  /** Actor index → socket, to tell cross-socket shootdowns. */
  socketOf: (actor: number) => number;
  script: ScriptOp[];
  /** Actor index of the pCPU with this core number (a script's `ipi: { to }`). */
  actorOfCore: (core: number) => number;
  /** End of the run: the workload is evaluated up to here even when no decision is due. */
  until: Time;
  /** For an L1 guest hypervisor: the VM index of an L2 by name (a script's `vmrun`). */
  l2Index?: (name: string) => number;
}

/** Statistics the OS keeps beside the core's. */
export interface LinuxOsStats {
  contextSwitches: number;
  shootdowns: number;
  shootdownLatencies: ShootdownLatency[];
  flushIpisHandled: number;
  /**
   * #VMEXITs of the shootdown flushes themselves: the initiator's and the targets' INVLPGs,
   * intercepted with shadow paging (NPT off). Always 0 on bare metal and with NPT.
   */
  shootdownFlushExits: number;
  /**
   * Flush IPIs this CPU did not take because it was idle in lazy TLB mode (the initiator's
   * should_flush_tlb skips it), and the flushes it did when it left lazy mode after one.
   */
  lazySkips: number;
  lazyFlushes: number;
  /**
   * Flush IPIs this CPU did not take because it ran another address space (should_flush_tlb:
   * loaded_mm is not the mm), and the flushes it did when it switched back to one of those.
   */
  otherMmSkips: number;
  otherMmFlushes: number;
  /** Times the idle loop was entered (the workload's `hlt`). */
  idleHalts: number;
  /** Workload operations (CALL, RET, page access) executed: the useful work done. */
  workOps: number;
  stuffingCalls: number;
  pageAccesses: number;
}

/**
 * One completed shootdown and how the initiator's wait splits along its critical target (the
 * last acknowledgement): delivery (interrupt and acknowledgement in flight), waiting for a
 * preempted or halted target to run again, and the target's handler (IRQs-off wait included).
 */
export interface ShootdownLatency {
  latency: Time;
  targets: number;
  /**
   * Targets the shootdown interrupted: they took the flush IPI (or, with Hyper-V's hypercall,
   * were kicked out for the host to flush); the others were skipped or deferred.
   */
  interrupted: number;
  crossSocket: boolean;
  delivery: Time;
  preemptedWait: Time;
  handler: Time;
}

const NEVER = Number.POSITIVE_INFINITY;

/**
 * Actions no spec promises and no explanation needs (single-address flushes run on every
 * shootdown target): reported only if the silicon cleared the RAP anyway.
 */
const SILENT: ReadonlySet<string> = new Set(['invlpg', 'invpcid-0', 'invlpgb', 'interrupt']);

/**
 * A Linux-like OS on one CPU (docs/domain.md §4) — the host's on a bare-metal core, or a guest's
 * on a vCPU, where intercepted instructions leave the guest (the step ends with an `exit` plan
 * and the OS resumes when the hypervisor enters the guest again): runs threads of processes,
 * each with its own call stack, as a stream of CALL/RET operations and data-page accesses
 * evaluated lazily up to each event (so the per-instruction path is plain code, not events);
 * switches address spaces with the configured instruction, stuffing the RAP when its CPUID says
 * it must; flushes the TLB locally and globally; and shoots down remote TLBs by IPI
 * (`flush_tlb_mm_range` → `native_flush_tlb_multi`), waiting for every acknowledgement.
 */
export class LinuxOs implements CpuSoftware {
  private core: CoreHw;
  private readonly cpu: Cpu;
  private readonly ctxBase: number;
  /** #VMEXITs caused by this step's instructions, in order (always empty on bare metal). */
  private exits: GuestExit[] = [];
  private readonly port: Port;
  private readonly w: WorkloadParams;
  /** Call stacks of this core's threads: actual return addresses. */
  private readonly stacks = new Map<number, number[]>();
  private current: number;
  /** The workload has executed up to here; it is paused until then after a costly action. */
  private cursor: Time = 0;
  private opCount = 0;
  private readonly opPs: Time;
  private readonly pageEvery: number;
  private next = {
    switch: NEVER,
    shootdown: NEVER,
    globalFlush: NEVER,
    localFlush: NEVER,
    hlt: NEVER,
    emulatedSwitch: NEVER,
  };
  private scriptPc = 0;
  /** Spinning in a shootdown or halted: the workload does not run. */
  private waiting = false;
  private halted = false;
  /**
   * The halt is the idle loop's (the workload's `hlt`, not a script's HLT instruction): the CPU
   * is in lazy TLB mode (enter_lazy_tlb), with its last process's address space still loaded.
   */
  private idleHalt = false;
  /**
   * Address spaces (PCIDs) whose shootdowns left this CPU out (lazy TLB mode, or it ran another
   * address space), with why: their mm's tlb_gen moved past this CPU's
   * (cpu_tlbstate.ctxs[asid].tlb_gen). Switching to one flushes it.
   */
  private readonly staleSpaces = new Map<number, FlushSkip>();
  /** Woken from the idle loop: the switch back to the process comes before any work. */
  private leavingIdle = false;
  /**
   * __switch_to_asm's RAP fill is still owed: the context switch's CR3 write left the guest
   * (shadow paging), and the fill runs when KVM enters it again, before any work — so it also
   * covers whatever the host left on an untagged RAP meanwhile.
   */
  private fillOwed = false;
  /** A vCPU the host has descheduled (preempted or switched out): guest time passes, no work runs. */
  private offCpu = false;
  /**
   * Interrupts stay masked until here: switch_mm_irqs_off runs with IRQs off, so a flush IPI
   * that arrives during a context switch is handled when the switch is done.
   */
  private irqsOffUntil: Time = 0;
  private readonly syncSeen = new Set<string>();
  /** Last known page-table change per (PCID, page): learnt from this core's own and others' shootdowns. */
  private readonly changedAt = new Map<number, Time>();
  private readonly stats_: LinuxOsStats = {
    contextSwitches: 0,
    shootdowns: 0,
    shootdownLatencies: [],
    flushIpisHandled: 0,
    shootdownFlushExits: 0,
    lazySkips: 0,
    lazyFlushes: 0,
    otherMmSkips: 0,
    otherMmFlushes: 0,
    idleHalts: 0,
    workOps: 0,
    stuffingCalls: 0,
    pageAccesses: 0,
  };
  /** The address-space family of this OS for the TLB checker: null on the host, else the VM. */
  private readonly vm: number | null;

  constructor(private readonly p: LinuxOsParams) {
    this.cpu = p.cpu;
    // Encoded once: the hot path (every CALL and RET) only adds the process number.
    this.ctxBase = encodeContext({ ...p.cpu.identity, process: 0 });
    this.core = p.cpu.core;
    this.port = p.port;
    this.w = p.workload;
    this.opPs = Math.max(1, this.core.timing.workloadOp);
    this.pageEvery = Math.max(1, this.core.timing.pageAccessEvery);
    // A core with no thread of any process idles; if it has a script, the script runs in
    // process 0 (scripts name their processes explicitly anyway).
    this.current = p.processes[0] ?? (p.script.length > 0 ? 0 : -1);
    this.vm = p.cpu.identity.world === 'host' ? null : p.cpu.identity.vm;
  }

  // ---- CpuSoftware ------------------------------------------------------------------------

  start(now: Time): StepPlan {
    const rng = this.port.rng;
    const phase = (every: Time): Time => (every > 0 ? now + rng.int(1, Math.max(1, every)) : NEVER);
    this.next = {
      switch: this.p.processes.length > 1 ? phase(this.w.contextSwitch.every) : NEVER,
      shootdown: phase(this.w.shootdown.every),
      globalFlush: phase(this.w.globalFlush.every),
      localFlush: phase(this.w.localFlush.every),
      hlt: phase(this.w.hlt.every),
      emulatedSwitch: this.p.processes.length > 1 ? phase(this.w.emulatedMovCr3.every) : NEVER,
    };
    if (this.current >= 0) this.core.pcid = this.pcidOf(this.current);
    this.cursor = now;
    return this.p.script.length > 0 ? { kind: 'run', at: now } : this.planNext(now);
  }

  step(now: Time): StepPlan {
    const plan = this.stepInner(now);
    if (this.exits.length === 0) return plan;
    // The step's intercepted instructions leave the guest; the OS waits until it is entered again.
    const exits = this.exits;
    this.exits = [];
    this.waiting = true;
    // A shootdown decided in the same step starts once the exits are done (its local INVLPG exited).
    return plan.kind === 'shootdown' ? { kind: 'exit', exits, afterwards: plan } : { kind: 'exit', exits };
  }

  /** The CPU leaves this OS for a while (an L1 hypervisor runs its L2): stop the workload at `now`. */
  suspend(now: Time): void {
    this.advanceTo(now);
    this.waiting = true;
  }

  /**
   * The host scheduled this vCPU out (preemption, or another vCPU's turn): the workload runs up
   * to `now` and then stands still; whatever the OS was waiting for, it still waits for.
   */
  deschedule(now: Time): void {
    this.advanceTo(now);
    this.offCpu = true;
  }

  inKernel(now: Time): boolean {
    return this.waiting || this.halted || this.cursor > now || this.irqsOffUntil > now;
  }

  /** The host scheduled this vCPU in again: the time it was out is lost to the workload. */
  reschedule(now: Time): void {
    this.offCpu = false;
    if (!this.waiting && !this.halted) this.cursor = Math.max(this.cursor, now);
  }

  /**
   * The host migrated this vCPU to another pCPU while it was scheduled out: its CALL/RET stream
   * and page accesses continue on that core's RAP and TLB. The PCID the guest runs on comes
   * along (VMRUN loads CR3 from the VMCB).
   */
  migrate(core: CoreHw): void {
    this.cpu.core = core;
    this.core = core;
  }

  /**
   * PV TLB flush: while this vCPU was preempted, another vCPU changed these page tables and set
   * KVM_VCPU_FLUSH_TLB instead of interrupting it; the host flushed before this entry. The OS
   * learns of the change as memory (so a translation that survived is caught as stale).
   */
  learnDeferredFlush(req: FlushRequest): void {
    for (const page of req.pages) this.rememberChange(req.pcid, page, req.changedAt);
  }

  resume(now: Time): StepPlan {
    // KVM enters a halted vCPU again only once it is runnable (its timer fired, or an interrupt
    // came — a wake-up: flush IPIs skip a vCPU idle in lazy TLB mode, see onLazyFlush): the
    // guest's HLT is over now, not at its next decision — until then the workload would stand
    // still, then run the whole stretch at once, past kicks and host-side flushes.
    this.wake(now);
    this.waiting = false;
    this.cursor = Math.max(this.cursor, now);
    if (this.fillOwed) {
      // The rest of the context switch the exit interrupted: __switch_to_asm, IRQs still off.
      this.fillOwed = false;
      const cost = this.stuff(this.p.cpuid.rapEntries, now);
      this.pause(now, cost);
      this.irqsOffUntil = Math.max(this.irqsOffUntil, now + cost);
    }
    if (this.leavingIdle) {
      // Back from the idle loop: the switch to the process comes before any work (with shadow
      // paging its flushing MOV CR3 leaves the guest).
      const cost = this.switchFromIdle(now);
      if (cost > 0) this.pause(now, cost);
      if (this.exits.length > 0) {
        const exits = this.exits;
        this.exits = [];
        this.waiting = true;
        return { kind: 'exit', exits };
      }
    }
    if (this.scriptPc < this.p.script.length) return { kind: 'run', at: this.cursor };
    return this.planNext(now);
  }

  private stepInner(now: Time): StepPlan {
    if (this.halted && now >= this.cursor) this.endHalt();
    if (now < this.cursor) return { kind: 'run', at: this.cursor };
    if (this.leavingIdle) {
      const cost = this.switchFromIdle(now);
      // An exiting CR3 write (shadow paging) leaves first: no work before KVM has flushed.
      if (cost > 0 || this.exits.length > 0) {
        this.pause(now, cost);
        return { kind: 'run', at: this.cursor };
      }
    }
    this.advanceTo(now);
    if (this.scriptPc < this.p.script.length) return this.runScriptOp(now);
    const due = this.dueDecision(now);
    switch (due) {
      case 'switch': {
        this.next.switch = now + this.w.contextSwitch.every;
        const others = this.p.processes.filter((q) => q !== this.current);
        const to = others[this.port.rng.int(0, others.length - 1)]!;
        this.pause(now, this.contextSwitch(to, now));
        return this.planNext(now);
      }
      case 'emulatedSwitch': {
        // A context switch whose MOV CR3 reaches the emulator (with NPT on too, docs/domain.md §3).
        this.next.emulatedSwitch = now + this.w.emulatedMovCr3.every;
        const others = this.p.processes.filter((q) => q !== this.current);
        const to = others[this.port.rng.int(0, others.length - 1)]!;
        this.pause(now, this.contextSwitch(to, now, true));
        return this.planNext(now);
      }
      case 'shootdown': {
        this.next.shootdown = now + this.w.shootdown.every;
        if (this.current < 0) return this.planNext(now);
        const pages = this.pickPages(this.w.shootdown.pages);
        return this.beginShootdown(now, pages);
      }
      case 'globalFlush':
        this.next.globalFlush = now + this.w.globalFlush.every;
        this.pause(now, this.globalFlush(now));
        return this.planNext(now);
      case 'localFlush':
        this.next.localFlush = now + this.w.localFlush.every;
        this.pause(now, this.localFlush(now));
        return this.planNext(now);
      case 'hlt':
        // The process sleeps: the CPU switches to the idle task (__switch_to_asm fills the RAP
        // when this OS stuffs; the fill's few ns are part of the sleep) and halts in lazy TLB
        // mode until its timer.
        if (this.current >= 0 && this.shouldStuff()) this.stuff(this.p.cpuid.rapEntries, now);
        this.stats_.idleHalts++;
        this.next.hlt = now + this.w.hlt.every;
        this.cursor = now + this.w.hlt.for;
        this.halted = true;
        this.idleHalt = true;
        return { kind: 'halt', until: now + this.w.hlt.for, idle: true };
      default:
        return this.planNext(now);
    }
  }

  onFlushIpi(req: FlushRequest, now: Time): { cost: Time; handledAt: Time; exits: GuestExit[] } {
    this.wake(now);
    this.advanceTo(now);
    this.stats_.flushIpisHandled++;
    this.reportInterrupt('flush IPI delivery');
    const irqsOff = Math.max(0, this.irqsOffUntil - now);
    let cost = irqsOff + this.core.timing.flushIpiHandler;
    const before = this.exits.length;
    for (const page of req.pages) {
      this.rememberChange(req.pcid, page, req.changedAt);
      cost += this.exec({ kind: 'invlpg', pcid: req.pcid, page }, 'flush_tlb_func (shootdown target)');
    }
    this.pause(now, cost);
    // With shadow paging the INVLPGs were intercepted (kvm_mmu_invlpg flushes for the guest): they
    // leave with the handler, not at the OS's next step, when the guest would have run on the
    // translations they remove.
    const exits = this.exits.splice(before);
    this.stats_.shootdownFlushExits += exits.length;
    return { cost, handledAt: now + irqsOff, exits };
  }

  /** In the idle loop, halted, in lazy TLB mode (`cpu_tlbstate_shared.is_lazy`). */
  private lazyTlb(): boolean {
    return this.halted && this.idleHalt;
  }

  /**
   * native_flush_tlb_multi → should_flush_tlb (arch/x86/mm/tlb.c, Linux 6.14+): a CPU in lazy
   * TLB mode "will get flushed at the next context switch" (since 4.19, "x86/mm/tlb: Make lazy
   * TLB mode lazier"); a CPU whose loaded_mm is another address space is left out too (the
   * once-a-second trim of the mask is beyond a run's length). The initiator neither interrupts
   * nor waits for either.
   */
  flushSkip(req: FlushRequest): FlushSkip | undefined {
    if (this.lazyTlb()) return 'lazy';
    if (this.current < 0 || this.pcidOf(this.current) !== req.pcid) return 'other-mm';
    return undefined;
  }

  /**
   * A shootdown left this CPU out: it runs on (or sleeps on); the change is in memory, and the
   * address space is flushed before this CPU uses it again — on leaving the idle loop
   * ({@link switchFromIdle}) or on switching back to it ({@link switchInstruction}).
   */
  onSkippedFlush(req: FlushRequest, how: FlushSkip, _now: Time): void {
    this.markOutOfDate(req, how);
    if (how === 'lazy') this.stats_.lazySkips++;
    else this.stats_.otherMmSkips++;
    const obs: ShootdownDeferredObs = {
      id: req.id,
      pcpu: this.core.params.index,
      ctx: this.ctxOf(this.current),
      path: how,
    };
    this.port.observe(ObsKind.SHOOTDOWN_DEFERRED, obs);
  }

  onIpi(_from: number, now: Time): Time {
    this.wake(now);
    this.advanceTo(now);
    this.reportInterrupt('IPI delivery');
    const cost = this.core.timing.flushIpiHandler;
    this.pause(now, cost);
    return cost;
  }

  onInit(from: number, now: Time): Time {
    this.wake(now);
    // INIT invalidates the TLB (APM §5.5.3; in a guest KVM's reset flushes it): nothing is stale.
    this.staleSpaces.clear();
    this.advanceTo(now);
    // In a guest the hardware never sees INIT: KVM emulated the reset (and reported it).
    if (this.p.cpu.identity.world === 'host') {
      const effect = this.core.init();
      this.reportAction(effect, 'native', `INIT from CPU ${from} (the CPU resets; the OS brings it back)`);
    }
    const cost = this.core.timing.flushIpiHandler;
    this.pause(now, cost);
    return cost;
  }

  onShootdownComplete(
    req: FlushRequest,
    targets: number[],
    now: Time,
    critical: FlushAck | undefined,
    interrupted: number,
  ): StepPlan {
    const sockets = new Set(targets.map((t) => this.p.socketOf(t)));
    sockets.add(this.p.socketOf(this.port.self));
    const obs: ShootdownCompleteObs = {
      id: req.id,
      pcpu: this.core.params.index,
      vm: this.vm,
      pcid: req.pcid,
      pages: req.pages,
      changedAt: req.changedAt,
      latency: now - req.changedAt,
      targets: targets.length,
      crossSocket: sockets.size > 1,
    };
    this.port.observe(ObsKind.SHOOTDOWN_COMPLETE, obs);
    // The critical target's times split the wait; a shootdown without targets is all local.
    const preemptedWait = critical ? critical.handledAt - critical.arrivedAt : 0;
    const handler = critical ? critical.ackedAt - critical.handledAt : 0;
    this.stats_.shootdownLatencies.push({
      latency: obs.latency,
      targets: obs.targets,
      interrupted,
      crossSocket: obs.crossSocket,
      delivery: obs.latency - preemptedWait - handler,
      preemptedWait,
      handler,
    });
    this.waiting = false;
    this.cursor = now;
    return this.scriptPc < this.p.script.length ? { kind: 'run', at: now } : this.planNext(now);
  }

  onSyncpoint(name: string, now: Time): StepPlan | undefined {
    this.syncSeen.add(name);
    const op = this.p.script[this.scriptPc];
    if (op?.op === 'awaitSyncpoint' && op.name === name) {
      this.scriptPc++;
      this.cursor = Math.max(this.cursor, now);
      return { kind: 'run', at: this.cursor };
    }
    return undefined;
  }

  stats(): LinuxOsStats {
    return this.stats_;
  }

  // ---- the workload's hot path ------------------------------------------------------------

  /** Executes the workload's CALL/RET operations and page accesses up to `t`. */
  private advanceTo(t: Time): void {
    // Woken from the idle loop: nothing runs before the switch back (switchFromIdle).
    if (this.waiting || this.halted || this.offCpu || this.leavingIdle) return;
    if (this.current < 0 || this.scriptPc < this.p.script.length) {
      this.cursor = Math.max(this.cursor, t);
      return;
    }
    const stack = this.stackOf(this.current);
    const rng = this.port.rng;
    const depthMax = this.w.callDepth;
    while (this.cursor + this.opPs <= t) {
      const at = this.cursor;
      this.cursor += this.opPs;
      this.stats_.workOps++;
      if (++this.opCount % this.pageEvery === 0) {
        this.accessPage(rng.int(0, this.w.workingSetPages - 1), at);
      } else if (stack.length === 0 || (stack.length < depthMax && rng.int(0, 1) === 0)) {
        this.call(stack, at);
      } else {
        this.ret(stack);
      }
    }
  }

  private call(stack: number[], at: Time): void {
    const addr = this.current * 65536 + stack.length;
    stack.push(addr);
    this.core.rap.push(addr, this.ctxOf(this.current), this.core.candidateEpoch, at, false);
  }

  private ret(stack: number[]): void {
    const actual = stack.pop();
    if (actual === undefined) return;
    const rap = this.core.rap;
    const slot = rap.pop(actual);
    if (slot < 0 || rap.stuff[slot] === 1) return;
    const ctx = this.ctxOf(this.current);
    if (rap.ctx[slot] !== ctx || rap.epoch[slot] !== this.core.candidateEpoch) {
      const obs: RapUseObs = {
        pcpu: this.core.params.index,
        consumer: ctx,
        producer: rap.ctx[slot]!,
        pushedAt: rap.pushedAt[slot]!,
        predicted: rap.addr[slot] === actual,
      };
      this.port.observe(ObsKind.RAP_USE, obs);
    }
  }

  private accessPage(page: number, at: Time): void {
    this.stats_.pageAccesses++;
    const pcid = this.pcidOf(this.current);
    const tlb = this.core.tlb;
    const space = this.core.space(pcid);
    const filledAt = tlb.lookup(space, page);
    if (filledAt < 0) {
      tlb.fill(space, page, at);
      return;
    }
    const changed = this.changedAt.get(pcid * 0x100000 + page);
    if (changed !== undefined && filledAt < changed) {
      tlb.stats.staleHits++;
      const obs: TlbStaleUseObs = {
        pcpu: this.core.params.index,
        vm: this.vm,
        ctx: this.ctxOf(this.current),
        pcid,
        page,
        filledAt,
        changedAt: changed,
      };
      this.port.observe(ObsKind.TLB_STALE_USE, obs);
    }
  }

  // ---- OS paths ---------------------------------------------------------------------------

  /**
   * schedule() → context_switch: switch_mm_irqs_off's address-space switch, then the RAP fill of
   * __switch_to_asm (FILL_RETURN_BUFFER, X86_FEATURE_RSB_CTXSW) if the OS's policy stuffs.
   */
  private contextSwitch(to: number, now: Time, emulated = false): Time {
    this.stats_.contextSwitches++;
    let cost = this.core.timing.contextSwitch;
    const exitsBefore = this.exits.length;
    cost += this.switchInstruction(to, emulated ? 'mov-cr3' : this.w.contextSwitch.using, emulated);
    this.current = to;
    cost += this.fillAfterSwitch(exitsBefore, now);
    this.irqsOffUntil = now + cost;
    return cost;
  }

  /**
   * __switch_to_asm's fill, after switch_mm_irqs_off: now, or — when the switch's CR3 write or
   * INVPCID left the guest (shadow paging; a step's exits are handled after it) — on the next
   * entry ({@link resume}). Either way it is the last thing before the next task's RETs, as in
   * Linux: on a RAP the host shares (no ERAPS), KVM's entries pushed before that VMRUN end up
   * beneath the fill, not on top. Returns the cost paid now.
   */
  private fillAfterSwitch(exitsBefore: number, now: Time): Time {
    if (!this.shouldStuff()) return 0;
    if (this.exits.length > exitsBefore) {
      this.fillOwed = true;
      return 0;
    }
    return this.stuff(this.p.cpuid.rapEntries, now);
  }

  private shouldStuff(): boolean {
    if (this.w.stuffing === 'never') return false;
    if (this.w.stuffing === 'always') return true;
    return !this.p.cpuid.eraps;
  }

  /**
   * The kernel's own RAP fill (FILL_RETURN_BUFFER), sized by its CPUID: what a hypervisor kernel
   * without ERAPS does on #VMEXIT (vmexit_fill_RSB), used by an L1 guest hypervisor.
   */
  stuffForVmexit(now: Time): Time {
    return this.stuff(this.p.cpuid.rapEntries, now);
  }

  private stuff(calls: number, now: Time): Time {
    const ctx = encodeContext({ ...this.cpu.identity, process: STUFF_PROCESS });
    const cost = this.core.stuff(calls, ctx, now);
    this.stats_.stuffingCalls += calls;
    const obs: StuffObs = {
      pcpu: this.core.params.index,
      ctx: this.ctxOf(this.current),
      calls,
      rapEntries: this.core.rap.size,
    };
    this.port.observe(ObsKind.STUFF, obs);
    return cost;
  }

  private switchInstruction(
    to: number,
    using: WorkloadParams['contextSwitch']['using'],
    emulated = false,
  ): Time {
    const pcid = this.pcidOf(to);
    // An address space a shootdown left this CPU out of: its tlb_gen is ahead of this CPU's, so
    // switch_mm_irqs_off flushes it (need_flush: a CR3 write without NOFLUSH).
    const stale = this.takeStale(pcid);
    if (using === 'invpcid-single' && this.p.cpuid.invpcid) {
      // PTI-style: the switch itself is a NOFLUSH CR3 write, the flush an INVPCID type 1.
      const a = this.exec({ kind: 'mov-cr3', pcid, noflush: true }, 'MOV CR3 (NOFLUSH) in switch_mm');
      return a + this.exec({ kind: 'invpcid', type: 1, pcid, page: 0 }, 'INVPCID type 1 in switch_mm');
    }
    const noflush = using === 'mov-cr3-noflush' && this.p.cpuid.pcid && !stale;
    const detail = noflush ? 'MOV CR3 with NOFLUSH in switch_mm' : 'MOV CR3 in switch_mm';
    return this.exec(
      { kind: 'mov-cr3', pcid, noflush },
      emulated ? `${detail}, through the emulator` : detail,
      emulated,
    );
  }

  private globalFlush(_now: Time): Time {
    // Every address space is flushed: none is out of date any more.
    this.staleSpaces.clear();
    if (this.w.globalFlush.using === 'invpcid-all' && this.p.cpuid.invpcid) {
      return this.exec({ kind: 'invpcid', type: 2, pcid: 0, page: 0 }, 'INVPCID type 2 (flush all)');
    }
    // native_flush_tlb_global without INVPCID: toggle CR4.PGE off and on.
    const a = this.exec(
      { kind: 'cr4', bit: 'pge', op: 'clear' },
      'CR4.PGE cleared (native_flush_tlb_global)',
    );
    return a + this.exec({ kind: 'cr4', bit: 'pge', op: 'set' }, 'CR4.PGE set (native_flush_tlb_global)');
  }

  private localFlush(_now: Time): Time {
    if (this.current < 0) return 1;
    const pcid = this.pcidOf(this.current);
    switch (this.w.localFlush.using) {
      case 'cr3-reload':
        return this.exec({ kind: 'mov-cr3', pcid, noflush: false }, 'MOV CR3 reload (local flush)');
      case 'invpcid-single':
        return this.exec({ kind: 'invpcid', type: 1, pcid, page: 0 }, 'INVPCID type 1 (local flush)');
      case 'invlpg': {
        const page = this.port.rng.int(0, this.w.workingSetPages - 1);
        return this.exec({ kind: 'invlpg', pcid, page }, 'INVLPG (local flush)');
      }
    }
  }

  /** flush_tlb_mm_range: change the PTEs, flush locally, IPI every other CPU of the mm. */
  private beginShootdown(now: Time, pages: number[]): StepPlan {
    this.stats_.shootdowns++;
    const pcid = this.pcidOf(this.current);
    let cost = 0;
    const exitsBefore = this.exits.length;
    for (const page of pages) {
      this.rememberChange(pcid, page, now);
      cost += this.exec({ kind: 'invlpg', pcid, page }, 'flush_tlb_mm_range (local)');
    }
    this.stats_.shootdownFlushExits += this.exits.length - exitsBefore;
    const targets = this.p.cpumask(this.current).filter((c) => c !== this.port.self);
    const request: FlushRequest = {
      id: this.port.newId(),
      pcid,
      pages,
      changedAt: now,
      from: this.port.self,
    };
    const start: ShootdownStartObs = {
      id: request.id,
      pcpu: this.core.params.index,
      vm: this.vm,
      pcid,
      pages,
      targets,
    };
    this.port.observe(ObsKind.SHOOTDOWN_START, start);
    this.cursor = now + cost;
    this.waiting = true;
    return {
      kind: 'shootdown',
      request,
      targets,
      sendDelay: cost + this.core.timing.shootdownSetup,
      sendSpacing: this.core.timing.ipiSendPerTarget,
    };
  }

  // ---- scripts ----------------------------------------------------------------------------

  private runScriptOp(now: Time): StepPlan {
    const op = this.p.script[this.scriptPc]!;
    if (op.op === 'awaitSyncpoint') {
      if (this.syncSeen.has(op.name)) {
        this.scriptPc++;
        return { kind: 'run', at: now };
      }
      return { kind: 'await', name: op.name };
    }
    this.scriptPc++;
    const cost = Math.max(1, this.execScriptOp(op, now));
    if (op.op === 'shootdown') return this.beginShootdown(now, this.pickPages(op.pages));
    if (op.op === 'syncpoint') {
      this.syncSeen.add(op.name);
      return { kind: 'syncpoint', name: op.name, at: now + cost };
    }
    if (op.op === 'ipi') return { kind: 'ipi', to: this.p.actorOfCore(op.to), sendDelay: 1, at: now + cost };
    if (op.op === 'init')
      return { kind: 'ipi', to: this.p.actorOfCore(op.to), sendDelay: 1, at: now + cost, init: true };
    if (op.op === 'hlt') {
      this.cursor = now + op.for;
      this.halted = true;
      return { kind: 'halt', until: now + op.for, idle: false };
    }
    this.cursor = now + cost;
    return this.scriptPc < this.p.script.length
      ? { kind: 'run', at: now + cost }
      : this.afterScript(now + cost);
  }

  private afterScript(at: Time): StepPlan {
    this.cursor = at;
    const plan = this.planNext(at);
    return plan.kind === 'idle' ? plan : { kind: 'run', at: Math.max(at, (plan as { at: Time }).at) };
  }

  /** Executes one script operation at `now`; returns its modelled duration. */
  private execScriptOp(op: ScriptOp, now: Time): Time {
    const op_ = this.opPs;
    switch (op.op) {
      case 'call': {
        const stack = this.stackOf(this.current);
        for (let i = 0; i < op.n; i++) this.call(stack, now + i * op_);
        return op.n * op_;
      }
      case 'ret': {
        const stack = this.stackOf(this.current);
        for (let i = 0; i < op.n; i++) this.ret(stack);
        return op.n * op_;
      }
      case 'stuffRap':
        return this.stuff(op.n === 'auto' ? this.p.cpuid.rapEntries : op.n, now);
      case 'switchTo':
        return this.contextSwitch(op.process, now);
      case 'movCr3': {
        const cost = this.exec(
          { kind: 'mov-cr3', pcid: this.pcidOf(op.process), noflush: op.noflush },
          op.noflush ? 'script: MOV CR3 with NOFLUSH' : 'script: MOV CR3',
        );
        this.current = op.process;
        return cost;
      }
      case 'emulate': {
        // The instruction reaches the hypervisor's emulator (as with MMIO); bare metal just runs it.
        const insn = this.scriptInstruction(op.inner);
        let cost = 0;
        for (const i of insn) cost += this.exec(i, `script: ${op.inner.op} through the emulator`, true);
        if (op.inner.op === 'movCr3') this.current = op.inner.process;
        return cost;
      }
      case 'invpcid':
      case 'invlpg':
      case 'cr4':
      case 'cr0':
      case 'wrmsr':
      case 'ibpb': {
        let cost = 0;
        for (const i of this.scriptInstruction(op)) cost += this.exec(i, `script: ${op.op}`);
        return cost;
      }
      case 'wait':
        return op.for;
      case 'shootdown':
      case 'syncpoint':
      case 'ipi':
      case 'init':
      case 'hlt':
        return 1;
      case 'awaitSyncpoint':
        return 0;
      case 'vmrun': {
        // An L1 guest hypervisor runs its L2: VMRUN is always intercepted, L0 emulates it.
        const l2 = this.p.l2Index?.(op.vm);
        if (l2 === undefined)
          throw new Error('vmrun outside an L1 guest hypervisor: only an L1 can run an L2 VM');
        this.exits.push({
          reason: 'vmrun',
          arg: l2,
          ctx: this.ctxOf(this.current),
          detail: `script: VMRUN of ${op.vm}`,
        });
        return 1;
      }
    }
  }

  // ---- helpers ----------------------------------------------------------------------------

  /** The architectural instructions of a script operation (CR writes may change several bits). */
  private scriptInstruction(op: ScriptOp): Instruction[] {
    switch (op.op) {
      case 'movCr3':
        return [{ kind: 'mov-cr3', pcid: this.pcidOf(op.process), noflush: op.noflush }];
      case 'invpcid':
        return [
          {
            kind: 'invpcid',
            type: op.type,
            pcid: this.pcidOf(op.process ?? this.current),
            page: op.page ?? 0,
          },
        ];
      case 'invlpg':
        return [{ kind: 'invlpg', pcid: this.pcidOf(this.current), page: op.page }];
      case 'cr4':
        return op.changes.map(({ bit, action }) => ({ kind: 'cr4', bit, op: action }) as Instruction);
      case 'cr0':
        return op.changes.map(({ bit, action }) => ({ kind: 'cr0', bit, op: action }) as Instruction);
      case 'wrmsr':
        return [{ kind: 'wrmsr', msr: op.msr }];
      case 'ibpb':
        return [{ kind: 'ibpb' }];
      default:
        throw new Error(`script operation ${op.op} is not an instruction`);
    }
  }

  /**
   * Executes an instruction on the CPU: natively (its RAP effect is reported here), or, in a
   * guest whose hypervisor intercepts it, as a #VMEXIT queued for the end of this step (the
   * hypervisor reports how it handled it).
   */
  private exec(insn: Instruction, detail: string, emulated = false): Time {
    const r = emulated ? this.cpu.execEmulated(insn) : this.cpu.exec(insn);
    if (r.exit) this.exits.push({ reason: r.exit, insn, ctx: this.ctxOf(this.current), detail });
    else if (r.effect && (r.effect.cleared || !SILENT.has(r.effect.action)))
      this.reportAction(r.effect, 'native', detail);
    return r.cost;
  }

  /** Interrupt delivery never promises a clear; it matters only when the silicon clears anyway. */
  private reportInterrupt(detail: string): void {
    const effect = this.core.interrupt();
    if (effect.cleared) this.reportAction(effect, 'native', detail);
  }

  private reportAction(effect: RapEffect, handling: ActionObs['handling'], detail: string): void {
    const obs: ActionObs = {
      pcpu: this.core.params.index,
      ctx: this.ctxOf(this.current),
      action: effect.action,
      handling,
      cleared: effect.cleared,
      microarch: effect.microarch,
      detail,
    };
    this.port.observe(ObsKind.ACTION, obs);
  }

  private dueDecision(now: Time): keyof LinuxOs['next'] | undefined {
    let best: keyof LinuxOs['next'] | undefined;
    let bestAt = NEVER;
    for (const k of ['shootdown', 'globalFlush', 'localFlush', 'switch', 'emulatedSwitch', 'hlt'] as const) {
      if (this.next[k] <= now && this.next[k] < bestAt) {
        best = k;
        bestAt = this.next[k];
      }
    }
    return best;
  }

  /**
   * The next step: the earliest due decision, or, with none before the end of the run, one last
   * step at `until` so that the workload (CALL/RET, page accesses) is evaluated to the end.
   */
  private planNext(now: Time): StepPlan {
    if (now >= this.p.until) return { kind: 'idle' };
    const at = Math.max(Math.min(...Object.values(this.next), this.p.until), this.cursor);
    return at > this.p.until ? { kind: 'idle' } : { kind: 'run', at };
  }

  /** An interrupt ends HLT (the core resumes after the handler). */
  private wake(now: Time): void {
    if (this.halted) {
      this.endHalt();
      this.cursor = now;
    }
  }

  /** A shootdown's change reached this CPU as memory only: its TLB is out of date. */
  private markOutOfDate(req: FlushRequest, how: FlushSkip): void {
    for (const page of req.pages) this.rememberChange(req.pcid, page, req.changedAt);
    this.staleSpaces.set(req.pcid, how);
  }

  /** Whether `pcid` is out of date here (it is flushed now, and counted by why it was). */
  private takeStale(pcid: number): boolean {
    const how = this.staleSpaces.get(pcid);
    if (how === undefined) return false;
    this.staleSpaces.delete(pcid);
    if (how === 'lazy') this.stats_.lazyFlushes++;
    else this.stats_.otherMmFlushes++;
    return true;
  }

  /** The halt is over; out of the idle loop, the CPU leaves lazy TLB mode. */
  private endHalt(): void {
    this.halted = false;
    if (this.idleHalt) {
      this.idleHalt = false;
      this.leavingIdle = true;
    }
  }

  /**
   * The switch from the idle task back to the process, as {@link contextSwitch} orders it:
   * switch_mm_irqs_off (prev == next, was_lazy): if the mm's tlb_gen moved while this CPU was
   * lazy ("TLB contents went out of date while we were in lazy mode"), it reloads CR3 with a
   * flush of the address space (load_new_mm_cr3, need_flush); then the RAP fill of
   * __switch_to_asm when this OS stuffs. Returns the cost.
   */
  private switchFromIdle(now: Time): Time {
    this.leavingIdle = false;
    if (this.current < 0) return 0;
    let cost = 0;
    const exitsBefore = this.exits.length;
    const pcid = this.pcidOf(this.current);
    if (this.takeStale(pcid)) {
      cost += this.exec(
        { kind: 'mov-cr3', pcid, noflush: false },
        'MOV CR3 in switch_mm_irqs_off (TLB out of date after lazy TLB mode)',
      );
    }
    return cost + this.fillAfterSwitch(exitsBefore, now);
  }

  private pause(now: Time, cost: Time): void {
    this.cursor = Math.max(this.cursor, now) + Math.max(1, cost);
  }

  private pickPages(n: number): number[] {
    const pages: number[] = [];
    for (let i = 0; i < n; i++) pages.push(this.port.rng.int(0, this.w.workingSetPages - 1));
    return [...new Set(pages)].sort((a, b) => a - b);
  }

  private rememberChange(pcid: number, page: number, at: Time): void {
    this.changedAt.set(pcid * 0x100000 + page, at);
  }

  /** A thread's call stack, created on first use (a script may switch to any process). */
  private stackOf(pid: number): number[] {
    let s = this.stacks.get(pid);
    if (!s) {
      s = this.initialStack(pid);
      this.stacks.set(pid, s);
    }
    return s;
  }

  private initialStack(pid: number): number[] {
    // A thread switched in mid-call, as after schedule(): it returns up the stack it left.
    const s: number[] = [];
    for (let d = 0; d < this.w.callDepth; d++) s.push(pid * 65536 + d);
    return s;
  }

  /** Context of process `pid` on this CPU: the process is the encoding's low field. */
  private ctxOf(pid: number): number {
    return this.ctxBase + (pid < 0 ? KERNEL_PROCESS : pid);
  }

  private pcidOf(pid: number): number {
    return pid + 1;
  }
}
