import { describe, expect, it } from 'vitest';
import type { KvmRequest } from '../../src/host/kvmVcpu.js';
import {
  kvmHandleInvpcid,
  kvmInvalidatePcid,
  kvmPostSetCr0,
  kvmPostSetCr4,
  kvmSetCr3,
} from '../../src/host/kvmX86.js';
import { POLICIES } from '../../src/scenario/host.js';
import { makeKvm } from './kvmHelpers.js';

/** KVM's generic x86 paths of docs/domain.md §3 (linux-7.0 steps 5–7 and the CR4/CR0 rules). */

function reqs(kvm: { requests: Set<KvmRequest> }): KvmRequest[] {
  return [...kvm.requests].sort();
}

const NPT = [true, false] as const;

describe('kvm_set_cr3 (linux-7.0 step 7)', () => {
  for (const npt of NPT) {
    for (const policy of POLICIES) {
      it(`same CR3 with NOFLUSH does nothing (npt=${npt}, ${policy})`, () => {
        const { kvm } = makeKvm({ npt, policy });
        kvm.guestCr3 = 5;
        const path = kvmSetCr3(kvm, 5, true);
        expect(reqs(kvm)).toEqual([]);
        expect(kvm.pendingRapClear).toBe(false);
        expect(kvm.guestCr3).toBe(5);
        expect(path).toMatch(/NOFLUSH/);
      });
    }
  }

  it('same CR3 without NOFLUSH → kvm_invalidate_pcid → TLB_FLUSH_GUEST with TDP', () => {
    const { kvm } = makeKvm({ npt: true });
    kvm.guestCr3 = 5;
    const path = kvmSetCr3(kvm, 5, false);
    expect(reqs(kvm)).toEqual(['TLB_FLUSH_GUEST']);
    expect(path).toMatch(/kvm_invalidate_pcid/);
    // A CR3 that did not change is not marked dirty.
    expect(kvm.pendingRapClear).toBe(false);
  });

  it('same CR3 without NOFLUSH → kvm_invalidate_pcid → TLB_FLUSH_CURRENT with shadow paging (active PCID)', () => {
    const { kvm } = makeKvm({ npt: false });
    kvm.guestCr3 = 5;
    const path = kvmSetCr3(kvm, 5, false);
    expect(reqs(kvm)).toEqual(['TLB_FLUSH_CURRENT']);
    expect(path).toMatch(/kvm_invalidate_pcid/);
    expect(kvm.pendingRapClear).toBe(false);
  });

  for (const npt of NPT) {
    for (const noflush of [false, true]) {
      for (const policy of POLICIES) {
        const pends = policy === 'linux-7.0' || policy === 'mutant-forget-pv-flush' || policy === 'always';
        it(`a new CR3 marks CR3 dirty → ${pends ? 'a pending clear' : 'no pending clear'} (${policy}, npt=${npt}, noflush=${noflush})`, () => {
          const { kvm } = makeKvm({ npt, policy });
          kvm.guestCr3 = 5;
          const path = kvmSetCr3(kvm, 6, noflush);
          expect(kvm.guestCr3).toBe(6);
          expect(kvm.pendingRapClear).toBe(pends);
          if (pends) expect(kvm.pendingWhy).not.toBe('');
          expect(path).toMatch(/dirty/);
          // No guest flush from the CR3 change itself; shadow paging loads a new root.
          expect(kvm.requests.has('TLB_FLUSH_GUEST')).toBe(false);
          expect(kvm.requests.has('TLB_FLUSH_CURRENT')).toBe(!npt && !noflush);
        });
      }
    }
  }

  it('linux-7.0: the pending clear names step 2', () => {
    const { kvm } = makeKvm({ policy: 'linux-7.0' });
    kvmSetCr3(kvm, 9, false);
    expect(kvm.pendingWhy).toMatch(/step 2/);
  });
});

describe('kvm_invalidate_pcid (linux-7.0 step 6)', () => {
  it('with TDP raises a guest flush for any PCID', () => {
    for (const pcid of [1, 2, 99]) {
      const { kvm } = makeKvm({ npt: true });
      kvm.guestCr3 = 1;
      kvmInvalidatePcid(kvm, pcid);
      expect(reqs(kvm)).toEqual(['TLB_FLUSH_GUEST']);
    }
  });
  it('with shadow paging raises a current flush for the active PCID', () => {
    const { kvm } = makeKvm({ npt: false });
    kvm.guestCr3 = 3;
    kvmInvalidatePcid(kvm, 3);
    expect(reqs(kvm)).toEqual(['TLB_FLUSH_CURRENT']);
  });
  it('with shadow paging does nothing for a PCID that is not active', () => {
    const { kvm } = makeKvm({ npt: false });
    kvm.guestCr3 = 3;
    const path = kvmInvalidatePcid(kvm, 4);
    expect(reqs(kvm)).toEqual([]);
    expect(kvm.pendingRapClear).toBe(false);
    expect(path).toMatch(/nothing/);
  });
});

describe('kvm_handle_invpcid (linux-7.0 step 5)', () => {
  for (const npt of NPT) {
    it(`type 0 has no RAP meaning: no guest flush, nothing pending (npt=${npt})`, () => {
      const { kvm } = makeKvm({ npt, policy: 'linux-7.0' });
      kvm.guestCr3 = 2;
      kvmHandleInvpcid(kvm, 0, 2);
      expect(kvm.requests.has('TLB_FLUSH_GUEST')).toBe(false);
      expect(kvm.pendingRapClear).toBe(false);
    });

    for (const type of [2, 3] as const) {
      it(`type ${type} raises a guest flush (npt=${npt})`, () => {
        const { kvm } = makeKvm({ npt });
        kvm.guestCr3 = 2;
        const path = kvmHandleInvpcid(kvm, type, 0);
        expect(reqs(kvm)).toEqual(['TLB_FLUSH_GUEST']);
        expect(path).toMatch(/TLB_FLUSH_GUEST/);
      });
    }
  }

  it('type 1 calls kvm_invalidate_pcid: TDP → guest flush', () => {
    const { kvm } = makeKvm({ npt: true });
    kvm.guestCr3 = 2;
    const path = kvmHandleInvpcid(kvm, 1, 7);
    expect(reqs(kvm)).toEqual(['TLB_FLUSH_GUEST']);
    expect(path).toMatch(/kvm_invalidate_pcid/);
  });
  it('type 1 calls kvm_invalidate_pcid: shadow, active PCID → current flush only', () => {
    const { kvm } = makeKvm({ npt: false });
    kvm.guestCr3 = 2;
    kvmHandleInvpcid(kvm, 1, 2);
    expect(reqs(kvm)).toEqual(['TLB_FLUSH_CURRENT']);
  });
  it('type 1 calls kvm_invalidate_pcid: shadow, another PCID → nothing', () => {
    const { kvm } = makeKvm({ npt: false });
    kvm.guestCr3 = 2;
    kvmHandleInvpcid(kvm, 1, 3);
    expect(reqs(kvm)).toEqual([]);
    expect(kvm.pendingRapClear).toBe(false);
  });
  it('type 1 does not mark a pending clear by itself (the dirty-bit read is unused)', () => {
    const { kvm } = makeKvm({ npt: true, policy: 'linux-7.0' });
    kvm.guestCr3 = 2;
    kvmHandleInvpcid(kvm, 1, 2);
    expect(kvm.pendingRapClear).toBe(false);
  });
});

describe('kvm_post_set_cr4', () => {
  const cases: {
    bit: 'pge' | 'pse' | 'pae' | 'pcide' | 'pke' | 'smep';
    before: boolean;
    after: boolean;
    want: KvmRequest[];
  }[] = [
    { bit: 'pge', before: true, after: false, want: ['TLB_FLUSH_GUEST'] },
    { bit: 'pge', before: false, after: true, want: ['TLB_FLUSH_GUEST'] },
    { bit: 'pcide', before: true, after: false, want: ['TLB_FLUSH_GUEST'] },
    { bit: 'pae', before: true, after: false, want: ['TLB_FLUSH_CURRENT'] },
    { bit: 'pae', before: false, after: true, want: ['TLB_FLUSH_CURRENT'] },
    { bit: 'smep', before: false, after: true, want: ['TLB_FLUSH_CURRENT'] },
    { bit: 'pse', before: true, after: false, want: [] },
    { bit: 'pse', before: false, after: true, want: [] },
    { bit: 'pke', before: false, after: true, want: [] },
    { bit: 'pge', before: true, after: true, want: [] },
    { bit: 'pcide', before: false, after: false, want: [] },
  ];
  for (const c of cases) {
    it(`CR4.${c.bit} ${c.before ? 1 : 0}→${c.after ? 1 : 0} raises ${c.want.join(', ') || 'nothing'}`, () => {
      for (const npt of NPT) {
        const { kvm } = makeKvm({ npt });
        kvmPostSetCr4(kvm, c.bit, c.before, c.after);
        expect(reqs(kvm)).toEqual(c.want);
        expect(kvm.pendingRapClear).toBe(false);
      }
    });
  }
  it('CR4.PCIDE 0→1 raises no guest flush', () => {
    const { kvm } = makeKvm();
    kvmPostSetCr4(kvm, 'pcide', false, true);
    expect(kvm.requests.has('TLB_FLUSH_GUEST')).toBe(false);
  });
});

describe('kvm_post_set_cr0', () => {
  it('CR0.PG cleared raises a guest flush', () => {
    for (const npt of NPT) {
      const { kvm } = makeKvm({ npt });
      kvmPostSetCr0(kvm, 'pg', true, false);
      expect(reqs(kvm)).toEqual(['TLB_FLUSH_GUEST']);
    }
  });
  it('CR0.PG set, CR0.WP changes and unchanged writes raise no guest flush', () => {
    for (const [bit, b, a] of [
      ['pg', false, true],
      ['pg', true, true],
      ['wp', true, false],
      ['wp', false, true],
    ] as const) {
      const { kvm } = makeKvm();
      kvmPostSetCr0(kvm, bit, b, a);
      expect(kvm.requests.has('TLB_FLUSH_GUEST'), `${bit} ${b}→${a}`).toBe(false);
    }
  });
});
