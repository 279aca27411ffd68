/**
 * An ERAPS virtualization policy: what a hypervisor does at each point where the guest's belief
 * in a RAP clear depends on it (docs/domain.md §3). A policy is data plus small handlers, keyed
 * by the KVM event; each decision carries the step it transcribes (`step`), so reports can say
 * which policy step handled an action. The engine (src/host/kvm*.ts) calls these hooks at the
 * places KVM's code does; a policy never touches hardware itself. To add a policy for another
 * hypervisor, write one file like these and list it in `index.ts`.
 */
export interface Decision {
  /** The policy's answer. */
  value: boolean;
  /** The policy step (and source) this answer comes from, for reports. */
  step: string;
}

/** Events after which a policy may remember a pending RAP clear for the next VMRUN. */
export type PendingTrigger =
  /** Something marked the guest's CR3 dirty (kvm_set_cr3 with a new value, KVM_SET_SREGS, reset). */
  | 'cr3-dirty'
  /** svm_flush_tlb_guest ran (KVM_REQ_TLB_FLUSH_GUEST serviced). */
  | 'flush-tlb-guest';

export interface ErapsPolicy {
  /** The scenario value of `host.policy` / `nested.policy`. */
  name: string;
  /** Where the policy is transcribed from. */
  source: string;
  /** Does the hypervisor advertise ERAPS in the guest's CPUID (KVM_GET_SUPPORTED_CPUID)? */
  advertise(p: { npt: boolean; hostHasEraps: boolean }): Decision;
  /** ALLOW_LARGER_RAP in the VMCB the hypervisor builds for its guest (init_vmcb). */
  allowLargerRap(p: { hostHasEraps: boolean; guestHasEraps: boolean }): Decision;
  /** Whether `trigger` leaves a RAP clear pending for the next VMRUN. */
  pendingClear(trigger: PendingTrigger): Decision;
  /** Before VMRUN: set CLEAR_RAP in the current VMCB? */
  clearRapAtVmrun(p: { pending: boolean; guestHasEraps: boolean }): Decision;
  /** Emulated nested VMRUN (L1 → L2): vmcb02's erap_ctl from vmcb12's. */
  nestedVmrun(p: { vmcb12AllowLargerRap: boolean; vmcb12ClearRap: boolean; hostHasEraps: boolean }): {
    allowLargerRap: Decision;
    clearRap: Decision;
  };
  /** Emulated nested #VMEXIT (L2 → L1): set CLEAR_RAP in vmcb01? */
  nestedVmexit(): Decision;
  /**
   * record_steal_time with KVM_VCPU_FLUSH_TLB set: raise the guest flush (KVM always does; a
   * policy omits this hook). Only a mutant policy, written to prove `tlb-stale` can fire, says no.
   */
  honourPvFlush?(): Decision;
  /** A mutant: a deliberately broken policy for checker self-tests, left out of studies. */
  mutant?: boolean;
}

/** A decision that is the same whatever happens. */
export function fixed(value: boolean, step: string): Decision {
  return { value, step };
}
