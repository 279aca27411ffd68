import type { Time } from '../actors/time.js';
import type { FlushRequest } from './cpuSoftware.js';
import type { Instruction } from './instruction.js';

/**
 * #VMEXIT reasons rapsim models (SVM exit codes, APM Vol. 2 Appendix C, by KVM's names). The
 * hypervisor dispatches them through an exhaustive table (`Record<ExitReason, Handler>`).
 */
export const EXIT_REASONS = [
  'cr0-write',
  'cr3-write',
  'cr4-write',
  'invpcid',
  'invlpg',
  'msr',
  'hlt',
  'npf',
  'vmrun',
  'intr',
  'vmmcall',
  'avic-incomplete-ipi',
  'pause',
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** A #VMEXIT as it travels from the vCPU to the hypervisor (plain data). */
export interface GuestExit {
  reason: ExitReason;
  /** The instruction that exited; for `npf`, the instruction the emulator will decode (MMIO). */
  insn?: Instruction;
  /** For `hlt`: how long the guest wants to sleep (ps); for `vmrun`: the L2 VM index. */
  arg?: number;
  /** For `hlt`: the guest's idle loop halted, in lazy TLB mode (see StepPlan's `halt`). */
  idle?: boolean;
  /** For `vmrun`: erap_ctl of vmcb12 as the L1 hypervisor wrote it. */
  vmcb12?: { allowLargerRap: boolean; clearRap: boolean };
  /**
   * For `vmrun`: when L1's scheduler timer interrupts this L2 (its slice is over and another L2
   * vCPU of this L1 vCPU may want the CPU); none while no other could.
   */
  l1TimerAt?: Time;
  /** For `vmmcall` (KVM_HC_SEND_IPI): the IPI the guest sends through the hypervisor. */
  ipi?: GuestIpi;
  /** For `vmmcall` (Hyper-V HvCallFlushVirtualAddressList/Space): the flush the host performs. */
  hvFlush?: { targets: number[]; req: FlushRequest };
  /**
   * The guest's CPL at the exit, as the VMCB save area holds it: 3 when the exit took the vCPU
   * out of user code (a kick while a process ran), 0 otherwise — every exit the guest OS causes
   * itself is a kernel instruction. KVM keeps it for directed yield (preempted_in_kernel).
   */
  cpl?: 0 | 3;
  /** Encoded context of the guest code that exited (for reports). */
  ctx: number;
  /** Why the guest executed it (the OS path), for reports. */
  detail: string;
}

/**
 * An interrupt a guest sends to other vCPUs of its VM (a flush IPI of a TLB shootdown, or a
 * script's plain `ipi`), as it travels through the hypervisor or AVIC (plain data).
 */
export interface GuestIpi {
  /** vCPU actor indices of the targets. */
  targets: number[];
  interrupt: GuestInterrupt;
}

/** One interrupt as the target's local APIC receives it. */
export interface GuestInterrupt {
  kind: 'flush' | 'ipi' | 'init';
  /** For `flush`: the shootdown request (its `from` is the initiator's vCPU actor). */
  req?: FlushRequest;
  /** Sender's actor index. */
  from: number;
  /** When the sender wrote the ICR (the start of delivery). */
  sentAt: Time;
  /**
   * Nested SVM: this is an L1 vCPU's kick of another L1 vCPU on behalf of an L2 interrupt. L1's
   * KVM emulated the L2's ICR write (or KVM_HC_SEND_IPI): it wrote the interrupt into the target
   * L2 vCPU's vAPIC in L1 memory and kicked the L1 vCPU that runs it (kvm_vcpu_kick), which
   * injects it at its next VMRUN of that L2.
   */
  forL2?: NestedInterrupt;
}

/** An interrupt for an L2 vCPU, as the kick to the L1 vCPU that runs it carries it. */
export interface NestedInterrupt {
  /** Actor index of the target L2 vCPU. */
  actor: number;
  /** The L2's own interrupt (its `from` is the sending L2 vCPU). */
  interrupt: GuestInterrupt;
}

/** The exit an instruction causes under the given intercepts, or undefined if it runs natively. */
export function exitReasonFor(
  insn: Instruction,
  intercepts: {
    cr3Write: boolean;
    cr4Write: boolean;
    cr0Write: boolean;
    invpcid: boolean;
    invlpg: boolean;
    wrmsr: boolean;
  },
): ExitReason | undefined {
  switch (insn.kind) {
    case 'mov-cr3':
      return intercepts.cr3Write ? 'cr3-write' : undefined;
    case 'cr4':
      return intercepts.cr4Write ? 'cr4-write' : undefined;
    case 'cr0':
      return intercepts.cr0Write ? 'cr0-write' : undefined;
    case 'invpcid':
      return intercepts.invpcid ? 'invpcid' : undefined;
    case 'invlpg':
      return intercepts.invlpg ? 'invlpg' : undefined;
    case 'wrmsr':
      // KVM passes PRED_CMD and SPEC_CTRL through to the guest; every other MSR write exits.
      return intercepts.wrmsr &&
        !(insn.msr === 'PRED_CMD' || insn.msr === 'SPEC_CTRL' || insn.msr === 0x49 || insn.msr === 0x48)
        ? 'msr'
        : undefined;
    case 'ibpb':
      return undefined;
  }
}
