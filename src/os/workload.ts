import type { Time } from '../actors/time.js';

/** How the OS switches address spaces (docs/domain.md §4). */
export type SwitchInstruction = 'mov-cr3' | 'mov-cr3-noflush' | 'invpcid-single';
export type GlobalFlushInstruction = 'invpcid-all' | 'cr4-pge';
export type LocalFlushInstruction = 'cr3-reload' | 'invpcid-single' | 'invlpg';
export type StuffingPolicy = 'auto' | 'always' | 'never';

/**
 * A generated workload, resolved to kernel time (interface.md's workload keys). A period of 0
 * means "never". The OS draws phases and choices from its actor's seeded stream.
 */
export interface WorkloadParams {
  processes: number;
  stuffing: StuffingPolicy;
  contextSwitch: { every: Time; using: SwitchInstruction };
  globalFlush: { every: Time; using: GlobalFlushInstruction };
  shootdown: { every: Time; pages: number };
  localFlush: { every: Time; using: LocalFlushInstruction };
  /** Context switches whose MOV CR3 reaches the hypervisor's instruction emulator (MMIO). */
  emulatedMovCr3: { every: Time };
  hlt: { every: Time; for: Time };
  callDepth: number;
  workingSetPages: number;
}

/** Script operations are the scenario's (interface.md "Scripts"), normalized by its loader. */
export type { ScriptOp } from '../scenario/scriptOps.js';
