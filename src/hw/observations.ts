import type { Time } from '../actors/time.js';
import type { RapAction } from './spec.js';

/**
 * The facts models report to the property checkers (docs/domain.md §5). Models report what
 * happened; checkers decide whether a promise was broken. Kinds are the `kind` of an
 * {@link Observation}; payloads are plain data.
 */
export const ObsKind = {
  /** A RET used an entry pushed by another context, or before a RAP-relevant action. */
  RAP_USE: 'rap.use',
  /** An architectural action with a RAP meaning was executed (or handled by a hypervisor). */
  ACTION: 'rap.action',
  /** A software stuffing sequence ran. */
  STUFF: 'rap.stuff',
  /** A shootdown's initiator changed page tables (the moment translations became stale). */
  SHOOTDOWN_START: 'tlb.shootdown.start',
  /** A shootdown's initiator saw every acknowledgement. */
  SHOOTDOWN_COMPLETE: 'tlb.shootdown.complete',
  /** A shootdown skipped a target, leaving its flush to the host before the target next enters. */
  SHOOTDOWN_DEFERRED: 'tlb.shootdown.deferred',
  /** A TLB hit on a translation filled before the last known change of its page. */
  TLB_STALE_USE: 'tlb.stale-use',
  /** A hypervisor executed VMRUN: whether CLEAR_RAP was set, and the policy step that decided. */
  VMRUN: 'svm.vmrun',
} as const;

export interface VmrunObs {
  pcpu: number;
  /** Encoded context of the guest entered (its kernel), naming the VM, vCPU and level. */
  ctx: number;
  vmcb: 'vmcb01' | 'vmcb02' | 'vmcb12';
  clearRap: boolean;
  /** The hardware cleared the RAP at this VMRUN (CLEAR_RAP on ERAPS, or a microarch extra). */
  cleared: boolean;
  allowLargerRap: boolean;
  tlbControl: number;
  /** The policy step that decided CLEAR_RAP. */
  why: string;
}

export interface RapUseObs {
  pcpu: number;
  /** Encoded context of the RET (see context.ts). */
  consumer: number;
  /** Encoded context of the entry's pusher. */
  producer: number;
  pushedAt: Time;
  predicted: boolean;
}

/** How the action reached the hardware: executed natively, or handled by a hypervisor path. */
export type ActionHandling = 'native' | 'intercepted' | 'emulated';

export interface ActionObs {
  pcpu: number;
  ctx: number;
  action: RapAction | 'ibpb';
  handling: ActionHandling;
  /** The hardware cleared the RAP for this action. */
  cleared: boolean;
  /** The clear was an unpromised microarchitectural extra. */
  microarch: boolean;
  /** Free text: the policy step or instruction detail, for the report. */
  detail: string;
}

export interface StuffObs {
  pcpu: number;
  ctx: number;
  calls: number;
  /** Valid entries the RAP can hold in the current mode (what the stuffing had to cover). */
  rapEntries: number;
}

export interface ShootdownStartObs {
  /** The VM whose address spaces these are (null: the host's). */
  vm: number | null;
  id: string;
  pcpu: number;
  pcid: number;
  pages: number[];
  targets: number[];
}

export interface ShootdownCompleteObs {
  /** The VM whose address spaces these are (null: the host's). */
  vm: number | null;
  id: string;
  pcpu: number;
  pcid: number;
  pages: number[];
  changedAt: Time;
  latency: Time;
  targets: number;
  crossSocket: boolean;
}

export interface ShootdownDeferredObs {
  /** The shootdown's id. */
  id: string;
  /** The pCPU of the target, and the target's context (bare metal, or its VM and vCPU). */
  pcpu: number;
  ctx: number;
  /**
   * PV TLB flush (KVM_VCPU_FLUSH_TLB in the steal-time area), Hyper-V's flush FIFO (the host
   * flushes for the target), lazy TLB mode (the target was idle; it flushes when it leaves), or
   * `other-mm` (the target ran another address space; it flushes when it switches back).
   */
  path: 'pv' | 'hyperv' | 'lazy' | 'other-mm';
}

export interface TlbStaleUseObs {
  /** The VM whose address spaces these are (null: the host's). */
  vm: number | null;
  /** Encoded context of the access (see context.ts). */
  ctx: number;
  pcpu: number;
  pcid: number;
  page: number;
  filledAt: Time;
  changedAt: Time;
}
