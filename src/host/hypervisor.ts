import type { CoreHw } from '../hw/core.js';
import type { GuestExit } from '../hw/exit.js';
import type { ActionHandling, ActionObs } from '../hw/observations.js';
import type { ErapsPolicy } from './policies/index.js';

/** KVM's deferred work, posted as request bits and serviced before the next VMRUN. */
export type KvmRequest = 'TLB_FLUSH' | 'TLB_FLUSH_CURRENT' | 'TLB_FLUSH_GUEST';

export interface GuestCr4 {
  pge: boolean;
  pse: boolean;
  pae: boolean;
  pcide: boolean;
  pke: boolean;
  smep: boolean;
}
export interface GuestCr0 {
  pg: boolean;
  wp: boolean;
}

/**
 * What KVM's generic paths (kvmX86.ts) and the exit table (exitHandlers.ts) need from the
 * hypervisor that runs them: L0's KVM on a pCPU (KvmVcpu), or an L1 guest hypervisor handling
 * its L2's exits (NestedKvm, src/host/nestedSvm.ts). Both are KVM, each with its own policy.
 */
export interface Hypervisor {
  readonly core: CoreHw;
  readonly p: { readonly npt: boolean; readonly policy: ErapsPolicy };
  guestCr3: number;
  readonly guestCr4: GuestCr4;
  readonly guestCr0: GuestCr0;
  request(r: KvmRequest): void;
  markPending(why: string): void;
  reportGuestAction(
    exit: GuestExit,
    action: ActionObs['action'],
    handling: ActionHandling,
    path: string,
  ): void;
}
