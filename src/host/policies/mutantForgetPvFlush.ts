import { linux70 } from './linux70.js';
import { type ErapsPolicy, fixed } from './policy.js';

/**
 * `mutant-forget-pv-flush`: `linux-7.0` with one deliberate bug — record_steal_time sees
 * KVM_VCPU_FLUSH_TLB and clears it, but never raises the guest flush. A shootdown that skipped
 * a preempted vCPU (PV TLB flush) then completes while that vCPU still holds the old
 * translation. It exists to prove that `tlb-stale` fires on the PV path (issue 4's acceptance);
 * studies and the comparison table leave mutants out.
 */
export const mutantForgetPvFlush: ErapsPolicy = {
  ...linux70,
  name: 'mutant-forget-pv-flush',
  source: 'rapsim mutant of linux-7.0 (checker self-test)',
  mutant: true,
  honourPvFlush: () => fixed(false, 'mutant: record_steal_time drops KVM_VCPU_FLUSH_TLB without flushing'),
};
