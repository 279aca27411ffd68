import type { Hypervisor } from './hypervisor.js';

/**
 * KVM's generic x86 paths (arch/x86/kvm/x86.c), transcribed from docs/domain.md §3. They raise
 * requests and mark CR3 dirty exactly where KVM does; the policy only decides whether a marked
 * CR3 or a guest TLB flush becomes a pending RAP clear. Each function returns the path it took,
 * in KVM's function names, for reports.
 */

/** kvm_invalidate_pcid: with TDP a guest flush; with shadow paging a current flush, if active. */
export function kvmInvalidatePcid(kvm: Hypervisor, pcid: number): string {
  if (kvm.p.npt) {
    kvm.request('TLB_FLUSH_GUEST');
    return 'kvm_invalidate_pcid → KVM_REQ_TLB_FLUSH_GUEST (TDP)';
  }
  if (pcid === kvm.guestCr3) {
    kvm.request('TLB_FLUSH_CURRENT');
    return 'kvm_invalidate_pcid → KVM_REQ_TLB_FLUSH_CURRENT (shadow paging, active PCID)';
  }
  return 'kvm_invalidate_pcid: shadow paging, PCID not active → nothing';
}

/**
 * kvm_set_cr3 (linux-7.0 step 7): the same CR3 with NOFLUSH does nothing; the same CR3 without
 * NOFLUSH invalidates the PCID; a new CR3 marks CR3 dirty (and, with shadow paging, loads a new
 * root: KVM_REQ_TLB_FLUSH_CURRENT unless NOFLUSH).
 */
export function kvmSetCr3(kvm: Hypervisor, pcid: number, noflush: boolean): string {
  if (pcid === kvm.guestCr3) {
    if (noflush) return 'kvm_set_cr3: same CR3 with NOFLUSH → nothing';
    return `kvm_set_cr3: same CR3 → ${kvmInvalidatePcid(kvm, pcid)}`;
  }
  kvm.guestCr3 = pcid;
  let path = 'kvm_set_cr3: new CR3 → CR3 marked dirty';
  if (!kvm.p.npt && !noflush) {
    kvm.request('TLB_FLUSH_CURRENT');
    path += ', kvm_mmu_new_pgd → KVM_REQ_TLB_FLUSH_CURRENT';
  }
  const d = kvm.p.policy.pendingClear('cr3-dirty');
  if (d.value) kvm.markPending(d.step);
  return `${path}; ${d.step}`;
}

/**
 * kvm_handle_invpcid (linux-7.0 step 5): type 0 flushes one address (nothing for the RAP);
 * type 1 reads the ERAPS dirty bit (result unused) and calls kvm_invalidate_pcid; types 2 and 3
 * raise a guest flush.
 */
export function kvmHandleInvpcid(kvm: Hypervisor, type: 0 | 1 | 2 | 3, pcid: number): string {
  if (type === 0) {
    kvm.request('TLB_FLUSH_CURRENT');
    return 'kvm_handle_invpcid type 0 → kvm_mmu_invpcid_gva (no RAP meaning)';
  }
  if (type === 1) return `kvm_handle_invpcid type 1 → ${kvmInvalidatePcid(kvm, pcid)}`;
  kvm.request('TLB_FLUSH_GUEST');
  return `kvm_handle_invpcid type ${type} → KVM_REQ_TLB_FLUSH_GUEST`;
}

/**
 * kvm_post_set_cr4: a CR4.PGE toggle or PCIDE 1→0 raises a guest flush; PAE and SMEP changes
 * only a current flush; PSE and PKE 0→1 none.
 */
export function kvmPostSetCr4(
  kvm: Hypervisor,
  bit: keyof Hypervisor['guestCr4'],
  before: boolean,
  after: boolean,
): string {
  if (before === after) return `kvm_set_cr4: CR4.${bit.toUpperCase()} unchanged → nothing`;
  if (bit === 'pge' || (bit === 'pcide' && before && !after)) {
    kvm.request('TLB_FLUSH_GUEST');
    return `kvm_post_set_cr4: CR4.${bit.toUpperCase()} ${after ? 'set' : 'cleared'} → KVM_REQ_TLB_FLUSH_GUEST`;
  }
  if (bit === 'pae' || bit === 'smep') {
    kvm.request('TLB_FLUSH_CURRENT');
    return `kvm_post_set_cr4: CR4.${bit.toUpperCase()} changed → KVM_REQ_TLB_FLUSH_CURRENT only`;
  }
  return `kvm_post_set_cr4: CR4.${bit.toUpperCase()} changed → no flush request`;
}

/** kvm_post_set_cr0: clearing CR0.PG raises a guest flush. */
export function kvmPostSetCr0(
  kvm: Hypervisor,
  bit: keyof Hypervisor['guestCr0'],
  before: boolean,
  after: boolean,
): string {
  if (bit === 'pg' && before && !after) {
    kvm.request('TLB_FLUSH_GUEST');
    return 'kvm_post_set_cr0: CR0.PG cleared → KVM_REQ_TLB_FLUSH_GUEST';
  }
  return `kvm_set_cr0: CR0.${bit.toUpperCase()} ${before === after ? 'unchanged' : 'changed'} → no flush request`;
}

/** Where an exit reached KVM, for reports ("intercepted (npt=false)", "emulated"). */
export function howReached(kvm: Hypervisor, emulated: boolean): string {
  if (emulated) return 'reached KVM’s instruction emulator (em_* handler)';
  return `intercepted by KVM (npt=${kvm.p.npt})`;
}
