import type { Time } from '../actors/time.js';
import type { GuestExit } from './exit.js';

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
  | { kind: 'ipi'; to: number; sendDelay: Time; at: Time }
  | { kind: 'syncpoint'; name: string; at: Time }
  | { kind: 'await'; name: string }
  | { kind: 'halt'; until: Time }
  /** A guest's instructions were intercepted: leave the guest with these #VMEXITs, in order. */
  | { kind: 'exit'; exits: GuestExit[] }
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
  /** Handles a TLB-flush IPI; returns the handler's duration (the ack leaves after it). */
  onFlushIpi(req: FlushRequest, now: Time): Time;
  /** Handles a plain IPI (a wake-up or a script's `ipi`); returns the handler's duration. */
  onIpi(from: number, now: Time): Time;
  /** The initiator saw every acknowledgement. */
  onShootdownComplete(req: FlushRequest, targets: number[], now: Time): StepPlan;
  /** A sync point was announced; returns a plan if this CPU was waiting for it. */
  onSyncpoint(name: string, now: Time): StepPlan | undefined;
  stats(): unknown;
}
