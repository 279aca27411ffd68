import { type ErapsPolicy, fixed } from './policy.js';

/** `always`: CLEAR_RAP on every VMRUN — safe, and the cost ceiling (docs/domain.md §3). */
export const always: ErapsPolicy = {
  name: 'always',
  source: 'docs/domain.md §3 (always)',
  advertise: (p) => fixed(p.hostHasEraps, 'always: ERAPS advertised'),
  allowLargerRap: (p) => fixed(p.guestHasEraps, "always: ALLOW_LARGER_RAP when the guest's CPUID has ERAPS"),
  pendingClear: () => fixed(true, 'always: every VMRUN clears anyway'),
  clearRapAtVmrun: () => fixed(true, 'always: CLEAR_RAP on every VMRUN'),
  nestedVmrun: (p) => ({
    allowLargerRap: fixed(p.vmcb12AllowLargerRap, 'always: vmcb02 ALLOW_LARGER_RAP from vmcb12'),
    clearRap: fixed(true, 'always: CLEAR_RAP on every VMRUN'),
  }),
  nestedVmexit: () => fixed(true, 'always: CLEAR_RAP on every VMRUN'),
};
