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
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** A #VMEXIT as it travels from the vCPU to the hypervisor (plain data). */
export interface GuestExit {
  reason: ExitReason;
  /** The instruction that exited; for `npf`, the instruction the emulator will decode (MMIO). */
  insn?: Instruction;
  /** For `hlt`: how long the guest wants to sleep (ps); for `vmrun`: the L2 VM index. */
  arg?: number;
  /** For `vmrun`: erap_ctl of vmcb12 as the L1 hypervisor wrote it. */
  vmcb12?: { allowLargerRap: boolean; clearRap: boolean };
  /** Encoded context of the guest code that exited (for reports). */
  ctx: number;
  /** Why the guest executed it (the OS path), for reports. */
  detail: string;
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
