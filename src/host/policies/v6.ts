import { type ErapsPolicy, fixed } from './policy.js';

const V6 = 'LKML 20251107093239.67012-1-amit@kernel.org (v6)';

/**
 * `v6`: the v6 patch series (docs/domain.md §3): ERAPS advertised only with NPT on;
 * ALLOW_LARGER_RAP whenever the *host* can offer ERAPS (`kvm_cpu_cap_has`, not the guest's
 * CPUID — Sean's review asked for `guest_cpu_cap_has`); CLEAR_RAP set on nested VMRUN (vmcb02)
 * and nested #VMEXIT (vmcb01); emulated or intercepted flushes are not handled.
 */
export const v6: ErapsPolicy = {
  name: 'v6',
  source: V6,
  advertise: (p) => fixed(p.hostHasEraps && p.npt, `v6: ERAPS advertised only when NPT is on (${V6})`),
  allowLargerRap: (p) =>
    fixed(
      p.hostHasEraps,
      'v6: init_vmcb sets ALLOW_LARGER_RAP when kvm_cpu_cap_has(ERAPS) (the host), not the guest CPUID',
    ),
  pendingClear: (t) =>
    fixed(
      false,
      t === 'cr3-dirty'
        ? 'v6: an intercepted or emulated MOV CR3 is not handled (no CLEAR_RAP)'
        : 'v6: svm_flush_tlb_guest does not request a RAP clear',
    ),
  clearRapAtVmrun: () => fixed(false, 'v6: CLEAR_RAP is set only on nested transitions'),
  nestedVmrun: (p) => ({
    allowLargerRap: fixed(p.hostHasEraps, 'v6: vmcb02 ALLOW_LARGER_RAP from the host capability'),
    clearRap: fixed(true, 'v6: nested VMRUN sets CLEAR_RAP in vmcb02'),
  }),
  nestedVmexit: () => fixed(true, 'v6: nested #VMEXIT sets CLEAR_RAP in vmcb01'),
};
