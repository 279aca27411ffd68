import { type ErapsPolicy, fixed } from './policy.js';

/**
 * `naive`: ERAPS advertised, ALLOW_LARGER_RAP always set (whatever the guest's CPUID says),
 * CLEAR_RAP never set (docs/domain.md §3). Transcribed as stated; not corrected.
 */
export const naive: ErapsPolicy = {
  name: 'naive',
  source: 'docs/domain.md §3 (naive)',
  advertise: (p) => fixed(p.hostHasEraps, 'naive: ERAPS advertised'),
  allowLargerRap: () => fixed(true, 'naive: ALLOW_LARGER_RAP always set'),
  pendingClear: () => fixed(false, 'naive: CLEAR_RAP is never set, so nothing is recorded'),
  clearRapAtVmrun: () => fixed(false, 'naive: CLEAR_RAP never set'),
  nestedVmrun: () => ({
    allowLargerRap: fixed(true, 'naive: ALLOW_LARGER_RAP always set (vmcb02 too)'),
    clearRap: fixed(false, 'naive: CLEAR_RAP never set on nested VMRUN'),
  }),
  nestedVmexit: () => fixed(false, 'naive: CLEAR_RAP never set on nested #VMEXIT'),
};
