import type { Time } from '../actors/time.js';
import type { RapContext } from '../hw/context.js';
import type { CoreHw, RapEffect } from '../hw/core.js';
import type { ExitReason } from '../hw/exit.js';
import { executeNative, type Instruction } from '../hw/instruction.js';

/** What executing an instruction on a CPU did: ran natively, or left the guest. */
export interface CpuResult {
  cost: Time;
  effect: RapEffect | undefined;
  /** Set when the instruction is intercepted: the guest leaves with this #VMEXIT reason. */
  exit: ExitReason | undefined;
}

/**
 * The CPU an OS runs on, as the OS sees it: a bare-metal core, or a vCPU whose intercepted
 * instructions leave the guest. The OS's per-instruction work (CALL/RET, TLB look-ups) goes to
 * `core` directly, in the mode the CPU is in.
 */
export interface Cpu {
  /** The core the CPU runs on now; a vCPU's changes when its host thread migrates. */
  core: CoreHw;
  /** Who this CPU is to the contexts that run on it (the RAP "view"). */
  readonly identity: Omit<RapContext, 'process'>;
  exec(insn: Instruction): CpuResult;
  /** An instruction reached through the emulator (MMIO): on bare metal it simply runs. */
  execEmulated(insn: Instruction): CpuResult;
}

/** A bare-metal core: every instruction runs natively. */
export class NativeCpu implements Cpu {
  readonly identity: Omit<RapContext, 'process'>;
  constructor(readonly core: CoreHw) {
    this.identity = { world: 'host', level: 0, vm: 0, view: core.params.index };
  }
  exec(insn: Instruction): CpuResult {
    return { ...executeNative(this.core, insn), exit: undefined };
  }
  execEmulated(insn: Instruction): CpuResult {
    return this.exec(insn);
  }
}
