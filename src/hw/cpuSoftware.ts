import type { Time } from '../actors/time.js';
import type { CoreHw } from './core.js';
import type { GuestExit, NestedInterrupt } from './exit.js';

/** A TLB-shootdown request as it travels in a flush IPI (plain data). */
export interface FlushRequest {
  /** Shootdown id (a seeded nanoid). */
  id: string;
  /** Address space (PCID) whose translations changed. */
  pcid: number;
  pages: number[];
  /** When the initiator changed the page tables. */
  changedAt: Time;
  /** Initiator's actor index. */
  from: number;
}

/**
 * A shootdown target's acknowledgement (the write to the initiator's CSD in shared memory), with
 * the times that split the initiator's wait (plain data).
 */
export interface FlushAck {
  id: string;
  /** When the interrupt reached the target CPU (bare metal) or the target's host (a VM). */
  arrivedAt: Time;
  /** When the target's handler started (after a preempted vCPU was scheduled again, IRQs off…). */
  handledAt: Time;
  /** When the handler finished and wrote the acknowledgement. */
  ackedAt: Time;
  /**
   * The target acknowledged without running the flush handler: PV TLB flush (it was preempted;
   * the host flushes before it next enters), Hyper-V's flush FIFO, or the initiator's
   * should_flush_tlb left it out ({@link FlushSkip}: it flushes the address space itself before
   * it next uses it).
   */
  deferred: boolean;
}

/**
 * Why a shootdown's initiator leaves a CPU of the mm's CPU mask out (arch/x86/mm/tlb.c,
 * should_flush_tlb, Linux 6.14+): `lazy`, the CPU is idle in lazy TLB mode (is_lazy; since 4.19);
 * `other-mm`, the CPU runs another address space (its loaded_mm is not the mm: the mask is only
 * trimmed lazily since "x86/mm/tlb: Update mm_cpumask lazily"; before 6.14 switch_mm_irqs_off
 * cleared the CPU from the mask when it switched away — "Stop remote flushes for the previous
 * mm" — with the same effect). Either way the page-table change reaches the CPU as memory: the
 * mm's tlb_gen has moved past the CPU's, and switch_mm_irqs_off flushes the address space before
 * the CPU uses it again.
 */
export type FlushSkip = 'lazy' | 'other-mm';

/**
 * What a host may ask of the software in one of its vCPUs: whether that guest's shootdown
 * initiators leave the vCPU out ({@link CpuSoftware.flushSkip}). It stands for the guest
 * initiator's own read of the target's is_lazy and loaded_mm in guest memory, which rapsim
 * evaluates where the IPI arrives (the host of the target), not at the sender.
 */
export interface GuestFlushView {
  flushSkip(req: FlushRequest): FlushSkip | undefined;
  /**
   * For an L1 guest hypervisor's kick that carries an L2 flush IPI ({@link NestedInterrupt}):
   * whether the L2's initiator would have deferred it instead (PV TLB flush, the target L2 vCPU
   * preempted in L1). If so, L1 has recorded the flush for its next VMRUN of that L2 vCPU, and
   * the answer is that L2 vCPU's kernel context (for the report); undefined: deliver the kick.
   */
  deferL2Flush?(forL2: NestedInterrupt, now: Time): number | undefined;
  /**
   * For such a kick: whether the L2's initiator leaves the target L2 vCPU out (its is_lazy or
   * loaded_mm, should_flush_tlb): then nothing of the L1 vCPU is disturbed.
   */
  l2FlushSkipped?(forL2: NestedInterrupt): boolean;
}

/**
 * What the software on a CPU asks the CPU to do next, after a step. The pCPU machine routes on
 * `kind`; only the shootdown protocol sends messages, and it does so from the machine.
 */
export type StepPlan =
  | { kind: 'run'; at: Time }
  | {
      kind: 'shootdown';
      request: FlushRequest;
      targets: number[];
      /** Time before the first IPI leaves. */
      sendDelay: Time;
      /** Time between two IPIs (they leave one after another, in target order). */
      sendSpacing: Time;
    }
  /**
   * An IPI to another CPU; `init`: an INIT IPI (the target resets); `forL2`: an L1 guest
   * hypervisor's kick of the L1 vCPU that runs an L2 vCPU it has an interrupt for.
   */
  | { kind: 'ipi'; to: number; sendDelay: Time; at: Time; init?: boolean; forL2?: NestedInterrupt }
  | { kind: 'syncpoint'; name: string; at: Time }
  | { kind: 'await'; name: string }
  /**
   * HLT until `until` (or an interrupt). `idle`: the OS's idle loop halts (default_idle), with the
   * CPU in lazy TLB mode (enter_lazy_tlb): shootdowns skip it, so their flush IPIs do not wake it
   * (a plain IPI or INIT does). Otherwise a HLT instruction of a script, which any interrupt ends.
   */
  | { kind: 'halt'; until: Time; idle: boolean }
  /**
   * A guest's instructions were intercepted: leave the guest with these #VMEXITs, in order;
   * `afterwards` is a plan the same step decided after them (a shootdown), taken when they are done.
   */
  | { kind: 'exit'; exits: GuestExit[]; afterwards?: StepPlan }
  | { kind: 'idle' };

/**
 * The contract between a physical core (the xstate machine in `pcpuMachine`) and the software it
 * runs. The OS model implements it (src/os); the core does not know which OS runs on it, as the
 * layer rules require (hw imports nothing above it).
 */
export interface CpuSoftware {
  /** First plan, at time 0. */
  start(now: Time): StepPlan;
  /**
   * The hypervisor entered the guest again after #VMEXITs: continue from `now`. For an L1 guest
   * hypervisor, `reflected` is an L2 exit that L0 reflected to it (nested #VMEXIT).
   */
  resume(now: Time, reflected?: GuestExit): StepPlan;
  /** Runs the work that is due at `now` (the core's own continuation). */
  step(now: Time): StepPlan;
  /**
   * Handles a TLB-flush IPI: returns the handler's duration (the ack leaves after it), when the
   * handler started (interrupts may be masked for a while after arrival), and the #VMEXITs its
   * instructions caused (in a guest with shadow paging every INVLPG is intercepted). With exits,
   * the handler is not done until KVM has handled them and entered the guest again: the
   * acknowledgement waits for that, and the software stands still meanwhile (see
   * {@link deschedule}).
   */
  onFlushIpi(req: FlushRequest, now: Time): { cost: Time; handledAt: Time; exits: GuestExit[] };
  /**
   * Whether a shootdown's initiator would leave this CPU out ({@link FlushSkip}): it reads the
   * CPU's is_lazy and loaded_mm. undefined: the CPU takes the flush IPI.
   */
  flushSkip(req: FlushRequest): FlushSkip | undefined;
  /**
   * A shootdown left this CPU out (`how`): nothing runs now; the page-table change is in memory,
   * and the CPU flushes the address space before it next uses it (switch_mm_irqs_off sees the
   * mm's tlb_gen moved: on leaving lazy mode, or on switching back to the mm).
   */
  onSkippedFlush(req: FlushRequest, how: FlushSkip, now: Time): void;
  /**
   * Nested SVM, an L1 guest hypervisor only: a kick from another L1 vCPU arrived for an L2 vCPU
   * this one runs ({@link NestedInterrupt}). The interrupt is already in that L2 vCPU's vAPIC;
   * L1 makes it runnable (it may halt) and injects at its next VMRUN of it. Returns whether L1
   * should step at once: it was running its own processes, which the woken L2 vCPU preempts.
   */
  noteL2Interrupt?(forL2: NestedInterrupt, now: Time): boolean;
  /** An L1 guest hypervisor only: see {@link GuestFlushView.deferL2Flush}. */
  deferL2Flush?(forL2: NestedInterrupt, now: Time): number | undefined;
  /** An L1 guest hypervisor only: see {@link GuestFlushView.l2FlushSkipped}. */
  l2FlushSkipped?(forL2: NestedInterrupt): boolean;
  /** Handles a plain IPI (a wake-up or a script's `ipi`); returns the handler's duration. */
  onIpi(from: number, now: Time): Time;
  /**
   * INIT from another CPU: the CPU resets (an implicit TLB invalidation, APM §5.5.3) and its OS
   * brings it back. On bare metal the hardware applies the spec; in a guest KVM emulated the
   * reset before this entry. Returns the time until the OS runs again.
   */
  onInit(from: number, now: Time): Time;
  /**
   * The initiator saw every acknowledgement; `interrupted` of them came from targets it
   * interrupted (the others were skipped or deferred: {@link FlushAck.deferred}).
   */
  onShootdownComplete(
    req: FlushRequest,
    targets: number[],
    now: Time,
    critical: FlushAck | undefined,
    interrupted: number,
  ): StepPlan;
  /** A vCPU's host scheduled it out: the software stands still (guest time still passes). */
  deschedule(now: Time): void;
  /** The host scheduled the vCPU in again. */
  reschedule(now: Time): void;
  /**
   * The software runs kernel code at `now` (CPL 0): it spins in a shootdown, halts, or is inside
   * a kernel action it paid for (a context switch, a flush); else user code runs (CPL 3).
   */
  inKernel(now: Time): boolean;
  /** The vCPU's thread moved to another pCPU (only a guest OS on a vCPU is ever migrated). */
  migrate?(core: CoreHw): void;
  /** PV TLB flush: a change another vCPU made while this one was preempted (host flushed it). */
  learnDeferredFlush(req: FlushRequest): void;
  /** A sync point was announced; returns a plan if this CPU was waiting for it. */
  onSyncpoint(name: string, now: Time): StepPlan | undefined;
  stats(): unknown;
}
