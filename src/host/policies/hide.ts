import { type ErapsPolicy, fixed } from './policy.js';

/**
 * `hide`: ERAPS is not advertised to the guest (docs/domain.md §3). A guest whose CPUID lacks
 * ERAPS stuffs the RAP itself; KVM never touches erap_ctl.
 */
export const hide: ErapsPolicy = {
  name: 'hide',
  source: 'docs/domain.md §3 (ERAPS not advertised)',
  advertise: () => fixed(false, 'hide: ERAPS not advertised in the guest CPUID'),
  allowLargerRap: () => fixed(false, 'hide: ALLOW_LARGER_RAP never set'),
  pendingClear: () => fixed(false, 'hide: no pending RAP clear is ever recorded'),
  clearRapAtVmrun: () => fixed(false, 'hide: CLEAR_RAP never set (the guest stuffs instead)'),
  nestedVmrun: () => ({
    allowLargerRap: fixed(false, 'hide: vmcb02 ALLOW_LARGER_RAP never set'),
    clearRap: fixed(false, 'hide: vmcb02 CLEAR_RAP never set'),
  }),
  nestedVmexit: () => fixed(false, 'hide: vmcb01 CLEAR_RAP never set'),
};
