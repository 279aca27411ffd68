import type { RapContext } from '../hw/context.js';
import type { CoreHw } from '../hw/core.js';
import { exitReasonFor } from '../hw/exit.js';
import { executeNative, type Instruction } from '../hw/instruction.js';
import type { Intercepts } from '../hw/vmcb.js';
import type { Cpu, CpuResult } from '../os/cpu.js';

/**
 * A vCPU as its guest OS sees it: instructions the hypervisor intercepts leave the guest
 * (#VMEXIT), the others run natively on the pCPU in guest mode, where the hardware applies the
 * spec's clears to the guest RAP. An instruction that reaches the emulator (MMIO) always exits.
 */
export class GuestCpu implements Cpu {
  constructor(
    /** The pCPU under this vCPU now (the host scheduler may migrate the vCPU's thread). */
    public core: CoreHw,
    readonly identity: Omit<RapContext, 'process'>,
    private readonly intercepts: Intercepts,
  ) {}

  exec(insn: Instruction): CpuResult {
    const reason = exitReasonFor(insn, this.intercepts);
    if (reason) return { cost: 0, effect: undefined, exit: reason };
    return { ...executeNative(this.core, insn), exit: undefined };
  }

  execEmulated(_insn: Instruction): CpuResult {
    return { cost: 0, effect: undefined, exit: 'npf' };
  }
}
