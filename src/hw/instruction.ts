import type { Time } from '../actors/time.js';
import type { BitOp, CoreHw, Cr0Bit, Cr4Bit, RapEffect } from './core.js';

/**
 * The architectural instructions with a RAP or TLB meaning that software executes: plain data,
 * so a guest's instruction can travel in a #VMEXIT to the hypervisor that emulates it.
 */
export type Instruction =
  | { kind: 'mov-cr3'; pcid: number; noflush: boolean }
  | { kind: 'invpcid'; type: 0 | 1 | 2 | 3; pcid: number; page: number }
  | { kind: 'invlpg'; pcid: number; page: number }
  | { kind: 'cr4'; bit: Cr4Bit; op: BitOp }
  | { kind: 'cr0'; bit: Cr0Bit; op: BitOp }
  | { kind: 'wrmsr'; msr: string | number }
  | { kind: 'ibpb' };

/** Result of executing an instruction on the hardware. */
export interface Executed {
  cost: Time;
  /** What the instruction did to the RAP (undefined: nothing RAP-relevant happened). */
  effect: RapEffect | undefined;
}

/** Executes an instruction natively on a core, in the core's current mode. */
export function executeNative(core: CoreHw, insn: Instruction): Executed {
  switch (insn.kind) {
    case 'mov-cr3':
      return core.movCr3(insn.pcid, insn.noflush);
    case 'invpcid':
      return core.invpcid(insn.type, insn.pcid, insn.page);
    case 'invlpg':
      return core.invlpg(insn.pcid, insn.page);
    case 'cr4':
      return core.writeCr4(insn.bit, insn.op);
    case 'cr0':
      return core.writeCr0(insn.bit, insn.op);
    case 'wrmsr':
      return core.wrmsr(insn.msr);
    case 'ibpb':
      return core.ibpb();
  }
}

/** Human form of an instruction for reports. */
export function describeInstruction(insn: Instruction): string {
  switch (insn.kind) {
    case 'mov-cr3':
      return insn.noflush ? 'MOV CR3 (NOFLUSH)' : 'MOV CR3';
    case 'invpcid':
      return `INVPCID type ${insn.type}`;
    case 'invlpg':
      return 'INVLPG';
    case 'cr4':
      return `MOV CR4 (${insn.bit} ${insn.op})`;
    case 'cr0':
      return `MOV CR0 (${insn.bit} ${insn.op})`;
    case 'wrmsr':
      return `WRMSR ${insn.msr}`;
    case 'ibpb':
      return 'IBPB';
  }
}
