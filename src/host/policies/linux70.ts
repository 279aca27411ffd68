import { type ErapsPolicy, fixed } from './policy.js';

const MERGED =
  "kvm-x86 commit db5e82496492 (Sean Christopherson's rewrite aR913X8EqO6meCqa@google.com), Linux 7.0";

/**
 * `linux-7.0`: the merged code, path by path (docs/domain.md §3, steps 1–8). The pending RAP
 * clear is an alias of KVM's CR3-dirty register bit (VCPU_EXREG_ERAPS), so everything that
 * marks CR3 dirty requests a clear, and `svm_flush_tlb_guest` marks it too. The generic paths
 * (kvm_set_cr3, kvm_invalidate_pcid, kvm_handle_invpcid, kvm_post_set_cr4, …) are KVM's and
 * live in src/host/kvmX86.ts; this file holds only what the ERAPS patch decides.
 */
export const linux70: ErapsPolicy = {
  name: 'linux-7.0',
  source: MERGED,
  advertise: (p) => fixed(p.hostHasEraps, 'linux-7.0: ERAPS advertised when the host has it'),
  allowLargerRap: (p) =>
    fixed(
      p.guestHasEraps,
      "linux-7.0 step 1: init_vmcb sets ALLOW_LARGER_RAP only when the guest's CPUID has ERAPS",
    ),
  pendingClear: (t) =>
    t === 'cr3-dirty'
      ? fixed(true, 'linux-7.0 step 2: CR3 marked dirty, which is the pending RAP clear (VCPU_EXREG_ERAPS)')
      : fixed(true, 'linux-7.0 step 3: svm_flush_tlb_guest marks the pending RAP clear'),
  clearRapAtVmrun: (p) =>
    p.pending && p.guestHasEraps
      ? fixed(
          true,
          'linux-7.0 step 4: guest has ERAPS and a clear is pending → CLEAR_RAP in the current VMCB',
        )
      : fixed(
          false,
          p.pending
            ? "linux-7.0 step 4: a clear is pending but the guest's CPUID lacks ERAPS"
            : 'linux-7.0 step 4: no clear pending (nothing marked CR3 dirty or flushed the guest TLB)',
        ),
  nestedVmrun: (p) => ({
    allowLargerRap: fixed(
      p.vmcb12AllowLargerRap,
      'linux-7.0 step 8: vmcb02 ALLOW_LARGER_RAP taken from vmcb12',
    ),
    clearRap: fixed(true, 'linux-7.0 step 8: nested VMRUN sets CLEAR_RAP in vmcb02'),
  }),
  nestedVmexit: () => fixed(true, 'linux-7.0 step 8: nested #VMEXIT sets CLEAR_RAP in vmcb01'),
};
