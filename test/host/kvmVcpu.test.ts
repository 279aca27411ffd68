import { describe, expect, it } from 'vitest';
import { EXIT_HANDLERS } from '../../src/host/exitHandlers.js';
import { KvmVcpu } from '../../src/host/kvmVcpu.js';
import { EXIT_REASONS } from '../../src/hw/exit.js';
import type { Instruction } from '../../src/hw/instruction.js';
import type { ActionObs, RapUseObs, VmrunObs } from '../../src/hw/observations.js';
import { POLICIES } from '../../src/scenario/host.js';
import { exitFor, FULL_CPUID, guestCtx, type KvmFixture, makeKvm, NO_ERAPS_CPUID } from './kvmHelpers.js';

/**
 * KvmVcpu: vcpu_enter_guest (requests serviced, the policy's CLEAR_RAP, VMRUN, reset after) and
 * the exit dispatch (intercepts and the emulator), docs/domain.md §3.
 */

const VMRUN = 'svm.vmrun';
const ACTION = 'rap.action';
const RAP_USE = 'rap.use';

function guestCalls(f: KvmFixture, n: number, base = 0x4000): void {
  const { core } = f;
  expect(core.mode).toBe('guest');
  for (let i = 0; i < n; i++) core.rap.push(base + i, guestCtx(1), core.candidateEpoch, 0, false);
}

function lastVmrun(f: KvmFixture): VmrunObs {
  const all = f.port.of<VmrunObs>(VMRUN);
  expect(all.length).toBeGreaterThan(0);
  return all[all.length - 1]!;
}

/** First VMRUN, the guest pushes `n` entries, the guest exits with `insn` (as `reason`), KVM enters again. */
function roundTrip(
  f: KvmFixture,
  reason: Parameters<typeof exitFor>[0],
  insn: Instruction | undefined,
  n = 6,
): VmrunObs {
  f.kvm.enter();
  guestCalls(f, n);
  f.kvm.handleExit(exitFor(reason, insn, reason === 'hlt' ? 1000 : undefined));
  f.kvm.enter();
  return lastVmrun(f);
}

const PGE_TOGGLE: Instruction = { kind: 'cr4', bit: 'pge', op: 'toggle' };

describe('SVM intercepts as KVM sets them', () => {
  for (const npt of [true, false])
    for (const invpcid of [true, false]) {
      it(`npt=${npt}, guest CPUID invpcid=${invpcid}`, () => {
        const i = KvmVcpu.intercepts(npt, { ...FULL_CPUID, invpcid });
        expect(i.cr3Write).toBe(!npt);
        expect(i.invlpg).toBe(!npt);
        expect(i.cr4Write).toBe(true);
        expect(i.invpcid).toBe(!npt || !invpcid);
        const { kvm } = makeKvm({ npt, cpuid: { ...FULL_CPUID, invpcid } });
        expect(kvm.vmcb01.intercepts).toEqual(i);
        expect(kvm.vmcb01.npt).toBe(npt);
      });
    }
});

describe('vmcb01 as init_vmcb builds it', () => {
  it('linux-7.0 step 1: ALLOW_LARGER_RAP only when the guest CPUID has ERAPS', () => {
    expect(makeKvm({ policy: 'linux-7.0', cpuid: FULL_CPUID }).kvm.vmcb01.erapCtl.allowLargerRap).toBe(true);
    expect(makeKvm({ policy: 'linux-7.0', cpuid: NO_ERAPS_CPUID }).kvm.vmcb01.erapCtl.allowLargerRap).toBe(
      false,
    );
  });
  it('v6: ALLOW_LARGER_RAP from the host capability even when the guest lacks ERAPS', () => {
    expect(
      makeKvm({ policy: 'v6', npt: false, cpuid: NO_ERAPS_CPUID }).kvm.vmcb01.erapCtl.allowLargerRap,
    ).toBe(true);
  });
  it('naive: ALLOW_LARGER_RAP always; hide: never', () => {
    expect(makeKvm({ policy: 'naive', cpuid: NO_ERAPS_CPUID }).kvm.vmcb01.erapCtl.allowLargerRap).toBe(true);
    expect(makeKvm({ policy: 'hide', cpuid: FULL_CPUID }).kvm.vmcb01.erapCtl.allowLargerRap).toBe(false);
  });
  it('starts with CLEAR_RAP off, TLB_CONTROL 0 and nothing pending', () => {
    for (const policy of POLICIES) {
      const { kvm } = makeKvm({ policy });
      expect(kvm.vmcb01.erapCtl.clearRap).toBe(false);
      expect(kvm.vmcb01.tlbControl).toBe(0);
      expect(kvm.pendingRapClear).toBe(false);
      expect(kvm.requests.size).toBe(0);
    }
  });
  it('the guest RAP is 32 entries in guest mode under linux-7.0 without guest ERAPS, 64 under v6', () => {
    const a = makeKvm({ policy: 'linux-7.0', cpuid: NO_ERAPS_CPUID });
    a.kvm.enter();
    expect(a.core.rap.size).toBe(32);
    const b = makeKvm({ policy: 'v6', cpuid: NO_ERAPS_CPUID });
    b.kvm.enter();
    expect(b.core.rap.size).toBe(64);
  });
});

describe('enter(): requests, CLEAR_RAP and the VMRUN observation', () => {
  it('the first VMRUN enters guest mode with no CLEAR_RAP (nothing pending)', () => {
    for (const policy of ['hide', 'naive', 'v6', 'linux-7.0'] as const) {
      const f = makeKvm({ policy });
      f.kvm.enter();
      expect(f.core.mode).toBe('guest');
      const o = lastVmrun(f);
      expect(o.clearRap).toBe(false);
      expect(o.vmcb).toBe('vmcb01');
      expect(o.why.length).toBeGreaterThan(0);
    }
  });

  it('linux-7.0: a serviced TLB_FLUSH_GUEST sets CLEAR_RAP at that VMRUN and the guest RAP is empty after', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: true });
    const o = roundTrip(f, 'cr4-write', PGE_TOGGLE);
    expect(o.clearRap).toBe(true);
    expect(o.cleared).toBe(true);
    expect(o.tlbControl).toBe(3);
    expect(o.why).toMatch(/linux-7\.0 step 4/);
    expect(f.core.rapGuest.occupancy).toBe(0);
    expect(f.kvm.stats.clearRapVmruns).toBe(1);
  });

  it('v6: a serviced TLB_FLUSH_GUEST flushes the ASID but sets no CLEAR_RAP; the guest RAP survives', () => {
    const f = makeKvm({ policy: 'v6', npt: true });
    const o = roundTrip(f, 'cr4-write', PGE_TOGGLE);
    expect(o.clearRap).toBe(false);
    expect(o.cleared).toBe(false);
    expect(o.tlbControl).toBe(3);
    expect(o.why).toMatch(/v6/);
    expect(f.core.rapGuest.occupancy).toBe(6);
    expect(f.kvm.stats.clearRapVmruns).toBe(0);
  });

  it('linux-7.0 with a guest whose CPUID lacks ERAPS: pending, but no CLEAR_RAP, and says why', () => {
    const f = makeKvm({ policy: 'linux-7.0', cpuid: NO_ERAPS_CPUID });
    const o = roundTrip(f, 'cr4-write', PGE_TOGGLE);
    expect(o.clearRap).toBe(false);
    expect(o.why).toMatch(/lacks ERAPS/);
    expect(f.core.rapGuest.occupancy).toBe(6);
  });

  it('CLEAR_RAP is reset after every VMRUN: a second enter() without new triggers does not clear', () => {
    const f = makeKvm({ policy: 'linux-7.0' });
    roundTrip(f, 'cr4-write', PGE_TOGGLE);
    expect(f.kvm.vmcb01.erapCtl.clearRap).toBe(false);
    expect(f.kvm.vmcb01.tlbControl).toBe(0);
    expect(f.kvm.pendingRapClear).toBe(false);
    expect(f.kvm.requests.size).toBe(0);
    guestCalls(f, 5);
    f.kvm.handleExit(exitFor('hlt', undefined, 1000));
    f.kvm.enter();
    const o = lastVmrun(f);
    expect(o.clearRap).toBe(false);
    expect(o.cleared).toBe(false);
    expect(o.tlbControl).toBe(0);
    expect(f.core.rapGuest.occupancy).toBe(5);
    expect(f.kvm.stats.clearRapVmruns).toBe(1);
  });

  it('always: CLEAR_RAP at every VMRUN', () => {
    const f = makeKvm({ policy: 'always' });
    for (let i = 0; i < 3; i++) {
      f.kvm.enter();
      expect(lastVmrun(f).clearRap).toBe(true);
      expect(f.core.rapGuest.occupancy).toBe(0);
      guestCalls(f, 4);
      f.kvm.handleExit(exitFor('hlt', undefined, 1000));
    }
    expect(f.kvm.stats.clearRapVmruns).toBe(3);
  });

  for (const policy of ['naive', 'hide'] as const) {
    it(`${policy}: never CLEAR_RAP, even after a guest flush and a new CR3`, () => {
      const f = makeKvm({ policy, npt: false });
      roundTrip(f, 'cr4-write', PGE_TOGGLE);
      expect(lastVmrun(f).clearRap).toBe(false);
      f.kvm.handleExit(exitFor('cr3-write', { kind: 'mov-cr3', pcid: 3, noflush: false }));
      f.kvm.enter();
      expect(lastVmrun(f).clearRap).toBe(false);
      expect(f.kvm.stats.clearRapVmruns).toBe(0);
      expect(f.core.rapGuest.occupancy).toBe(6);
    });
  }

  it('a serviced TLB_FLUSH_CURRENT flushes the ASID (TLB_CONTROL=3) without CLEAR_RAP (linux-7.0)', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: false });
    f.kvm.enter();
    f.kvm.request('TLB_FLUSH_CURRENT');
    f.core.vmexit(false);
    f.kvm.enter();
    const o = lastVmrun(f);
    expect(o.tlbControl).toBe(3);
    expect(o.clearRap).toBe(false);
  });

  it('a current flush never clears the RAP; with microarch 1/1 the TLB-flushing VMRUN does (reported as cleared, not CLEAR_RAP)', () => {
    const f = makeKvm({ policy: 'v6', microarchClears: { num: 1, den: 1 } });
    const o = roundTrip(f, 'cr4-write', { kind: 'cr4', bit: 'pae', op: 'toggle' });
    expect(o.clearRap).toBe(false);
    expect(o.tlbControl).toBe(3);
    expect(o.cleared).toBe(true);
    expect(f.core.rapGuest.occupancy).toBe(0);
  });

  // BUG (src/host/kvmVcpu.ts, enter(), `this.requests.delete('TLB_FLUSH') || this.requests.delete('TLB_FLUSH_CURRENT')`):
  // the `||` short-circuits, so with both TLB_FLUSH and TLB_FLUSH_CURRENT pending only TLB_FLUSH is
  // serviced; TLB_FLUSH_CURRENT survives the VMRUN and makes the *next* VMRUN flush the ASID again
  // (TLB_CONTROL=3), an extra microarch-eligible 'vmrun-tlb-flush'. KVM services every request before
  // VMRUN (kvm_service_local_tlb_flush_requests).
  it('services every TLB request before VMRUN: none is left for the next one', () => {
    const f = makeKvm({ policy: 'linux-7.0' });
    f.kvm.request('TLB_FLUSH');
    f.kvm.request('TLB_FLUSH_CURRENT');
    f.kvm.request('TLB_FLUSH_GUEST');
    f.kvm.enter();
    expect([...f.kvm.requests]).toEqual([]);
  });

  // BUG: same short-circuit in KvmVcpu.enter() as above; observable as TLB_CONTROL=3 on a VMRUN
  // that had no flush request of its own.
  it('services TLB_FLUSH and TLB_FLUSH_CURRENT together: the next VMRUN flushes nothing', () => {
    const f = makeKvm({ policy: 'linux-7.0' });
    f.kvm.request('TLB_FLUSH');
    f.kvm.request('TLB_FLUSH_CURRENT');
    f.kvm.enter();
    f.kvm.handleExit(exitFor('hlt', undefined, 1000));
    f.kvm.enter();
    expect(lastVmrun(f).tlbControl).toBe(0);
  });

  it('pushes KVM’s call chain on the host RAP at VMRUN and returns up it after #VMEXIT', () => {
    const f = makeKvm({ policy: 'linux-7.0', autoIbrs: false });
    f.kvm.enter();
    expect(f.core.rapHost.occupancy).toBe(f.core.timing.kvmCallDepth);
    f.kvm.handleExit(exitFor('hlt', undefined, 1000));
    expect(f.core.rapHost.occupancy).toBe(0);
    expect(f.core.rapHost.stats.predicted).toBe(f.core.timing.kvmCallDepth);
  });
});

describe('handleExit(): the exit table, intercepts and the emulator', () => {
  it('EXIT_HANDLERS has a handler for every EXIT_REASONS entry, and nothing else', () => {
    expect(Object.keys(EXIT_HANDLERS).sort()).toEqual([...EXIT_REASONS].sort());
    for (const r of EXIT_REASONS) expect(typeof EXIT_HANDLERS[r]).toBe('function');
  });

  it('returns to host mode, counts the exit, starts a new candidate epoch; HLT blocks for its duration', () => {
    const f = makeKvm();
    f.kvm.enter();
    const epoch = f.core.candidateEpoch;
    const r = f.kvm.handleExit(exitFor('hlt', undefined, 4242));
    expect(f.core.mode).toBe('host');
    expect(f.core.asid).toBe(0);
    expect(f.core.candidateEpoch).toBeGreaterThan(epoch);
    expect(f.kvm.stats.exits).toEqual({ hlt: 1 });
    expect(r.blockFor).toBe(4242);
    expect(f.kvm.stats.worldSwitches).toBe(2);
  });

  it('an intercepted MOV CR3 (NPT off) reaches kvm_set_cr3: linux-7.0 sets CLEAR_RAP at the next VMRUN', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: false });
    const o = roundTrip(f, 'cr3-write', { kind: 'mov-cr3', pcid: 3, noflush: false });
    const a = f.port.of<ActionObs>(ACTION);
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ action: 'mov-cr3', handling: 'intercepted', ctx: guestCtx(1) });
    expect(a[0]!.detail).toMatch(/intercepted by KVM \(npt=false\)/);
    expect(a[0]!.detail).toMatch(/kvm_set_cr3/);
    expect(o.clearRap).toBe(true);
    expect(f.core.rapGuest.occupancy).toBe(0);
  });

  it('an intercepted MOV CR3 under naive: reported, no CLEAR_RAP', () => {
    const f = makeKvm({ policy: 'naive', npt: false });
    const o = roundTrip(f, 'cr3-write', { kind: 'mov-cr3', pcid: 3, noflush: false });
    expect(f.port.of<ActionObs>(ACTION)[0]).toMatchObject({ action: 'mov-cr3', handling: 'intercepted' });
    expect(o.clearRap).toBe(false);
    expect(o.why).toMatch(/naive/);
    expect(f.core.rapGuest.occupancy).toBe(6);
  });

  it('the emulator path (npf with MOV CR3) reaches kvm_set_cr3 with NPT on: linux-7.0 clears', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: true });
    f.kvm.enter();
    guestCalls(f, 6);
    f.kvm.handleExit(exitFor('npf', { kind: 'mov-cr3', pcid: 3, noflush: false }));
    expect(f.kvm.guestCr3).toBe(3);
    expect(f.kvm.pendingRapClear).toBe(true);
    const a = f.port.of<ActionObs>(ACTION);
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ action: 'mov-cr3', handling: 'emulated' });
    expect(a[0]!.detail).toMatch(/emulator/);
    f.kvm.enter();
    expect(lastVmrun(f).clearRap).toBe(true);
    expect(f.core.rapGuest.occupancy).toBe(0);
  });

  it('the emulator path under v6: kvm_set_cr3 reached, nothing pending, no CLEAR_RAP', () => {
    const f = makeKvm({ policy: 'v6', npt: true });
    const o = roundTrip(f, 'npf', { kind: 'mov-cr3', pcid: 3, noflush: false });
    expect(f.kvm.guestCr3).toBe(3);
    expect(f.port.of<ActionObs>(ACTION)[0]).toMatchObject({ action: 'mov-cr3', handling: 'emulated' });
    expect(o.clearRap).toBe(false);
    expect(f.core.rapGuest.occupancy).toBe(6);
  });

  for (const type of [0, 1, 2, 3] as const) {
    it(`the emulator has no INVPCID handler (type ${type}): nothing reported, nothing requested`, () => {
      const f = makeKvm({ policy: 'linux-7.0', npt: true });
      f.kvm.enter();
      f.kvm.handleExit(exitFor('npf', { kind: 'invpcid', type, pcid: 1, page: 0 }));
      expect(f.port.of(ACTION)).toEqual([]);
      expect(f.kvm.requests.size).toBe(0);
      expect(f.kvm.pendingRapClear).toBe(false);
      f.kvm.enter();
      expect(lastVmrun(f).clearRap).toBe(false);
    });
  }

  it('an intercepted INVPCID type 2 raises a guest flush: linux-7.0 clears', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: false });
    const o = roundTrip(f, 'invpcid', { kind: 'invpcid', type: 2, pcid: 0, page: 0 });
    expect(f.port.of<ActionObs>(ACTION)[0]).toMatchObject({ action: 'invpcid-2', handling: 'intercepted' });
    expect(o.clearRap).toBe(true);
  });

  it('an intercepted INVPCID type 0 has no RAP meaning: linux-7.0 does not clear', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: false });
    const o = roundTrip(f, 'invpcid', { kind: 'invpcid', type: 0, pcid: 1, page: 3 });
    expect(f.port.of<ActionObs>(ACTION)[0]).toMatchObject({ action: 'invpcid-0' });
    expect(o.clearRap).toBe(false);
    expect(f.core.rapGuest.occupancy).toBe(6);
  });

  it('an intercepted CR0.PG clear raises a guest flush: linux-7.0 clears, v6 does not', () => {
    const insn: Instruction = { kind: 'cr0', bit: 'pg', op: 'clear' };
    const a = makeKvm({ policy: 'linux-7.0' });
    expect(roundTrip(a, 'cr0-write', insn).clearRap).toBe(true);
    expect(a.kvm.guestCr0.pg).toBe(false);
    expect(a.port.of<ActionObs>(ACTION)[0]).toMatchObject({ action: 'cr0-pg', handling: 'intercepted' });
    const b = makeKvm({ policy: 'v6' });
    expect(roundTrip(b, 'cr0-write', insn).clearRap).toBe(false);
  });

  it('an intercepted CR4 write tracks the guest CR4 and reports the architectural action', () => {
    const f = makeKvm({ policy: 'linux-7.0' });
    roundTrip(f, 'cr4-write', { kind: 'cr4', bit: 'pse', op: 'clear' });
    expect(f.kvm.guestCr4.pse).toBe(false);
    expect(f.port.of<ActionObs>(ACTION)[0]).toMatchObject({ action: 'cr4-pse', handling: 'intercepted' });
    // PSE raises no flush: linux-7.0 has nothing pending.
    expect(lastVmrun(f).clearRap).toBe(false);
  });

  it('an intercepted WRMSR to a listed MSR is emulated in software: reported, no flush, no CLEAR_RAP', () => {
    const f = makeKvm({ policy: 'linux-7.0', spec: 'eraps-apm' });
    const o = roundTrip(f, 'msr', { kind: 'wrmsr', msr: 'SYSCFG' });
    expect(f.port.of<ActionObs>(ACTION)[0]).toMatchObject({
      action: 'wrmsr-msrlist',
      handling: 'intercepted',
      cleared: false,
    });
    expect(o.clearRap).toBe(false);
    expect(f.core.rapGuest.occupancy).toBe(6);
  });
});

describe("KVM's view of the guest CR3 (kvm_set_cr3's same-value test, linux-7.0 step 7)", () => {
  // BUG (src/host/kvmVcpu.ts: `guestCr3 = -1`, never updated except by kvm_set_cr3): KVM's copy of
  // the guest CR3 starts at -1 instead of the CR3 the guest runs with, and with NPT on it never
  // learns the CR3 the guest loaded natively (real KVM: svm_handle_exit does
  // `if (npt_enabled) vcpu->arch.cr3 = svm->vmcb->save.cr3` on every exit). A later emulated or
  // intercepted MOV CR3 of the *same* value is then taken for a new CR3: "CR3 marked dirty" →
  // linux-7.0 sets CLEAR_RAP where the merged code does nothing (same value + NOFLUSH) or only a
  // current flush (shadow paging, same value). The model clears where KVM would not, hiding a
  // rap-promised-clear that real linux-7.0 has.
  it('NPT on: after the guest loads CR3 natively, an emulated MOV CR3 of that value with NOFLUSH does nothing', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: true });
    f.kvm.enter();
    // The guest's own MOV CR3 runs natively (not intercepted with NPT on) and clears the RAP.
    f.core.movCr3(2, false);
    guestCalls(f, 4);
    f.kvm.handleExit(exitFor('npf', { kind: 'mov-cr3', pcid: 2, noflush: true }));
    expect(f.kvm.pendingRapClear).toBe(false);
    expect(f.kvm.requests.size).toBe(0);
    f.kvm.enter();
    expect(lastVmrun(f).clearRap).toBe(false);
  });

  it("KVM's guest CR3 is the CR3 the guest is running with, even before its first MOV CR3", () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: false });
    f.core.pcid = 1; // the guest OS starts in process 0, PCID 1
    f.kvm.enter();
    expect(f.kvm.guestCr3).toBe(f.core.pcid);
  });

  it('NPT off: once KVM has seen a CR3, the same value with NOFLUSH does nothing and without it only a current flush', () => {
    const f = makeKvm({ policy: 'linux-7.0', npt: false });
    f.kvm.enter();
    f.kvm.handleExit(exitFor('cr3-write', { kind: 'mov-cr3', pcid: 2, noflush: false }));
    f.kvm.enter();
    expect(lastVmrun(f).clearRap).toBe(true);
    f.kvm.handleExit(exitFor('cr3-write', { kind: 'mov-cr3', pcid: 2, noflush: true }));
    expect(f.kvm.requests.size).toBe(0);
    f.kvm.enter();
    expect(lastVmrun(f).clearRap).toBe(false);
    f.kvm.handleExit(exitFor('cr3-write', { kind: 'mov-cr3', pcid: 2, noflush: false }));
    expect([...f.kvm.requests]).toEqual(['TLB_FLUSH_CURRENT']);
    f.kvm.enter();
    expect(lastVmrun(f).clearRap).toBe(false);
  });
});

describe('KVM’s host RETs after #VMEXIT against guest entries', () => {
  it('on legacy hardware without AutoIBRS, KVM’s RETs consume guest-pushed entries (reported)', () => {
    const f = makeKvm({ spec: 'legacy', autoIbrs: false, policy: 'hide' });
    f.kvm.enter();
    guestCalls(f, 3);
    f.kvm.handleExit(exitFor('hlt', undefined, 1000));
    const uses = f.port.of<RapUseObs>(RAP_USE);
    expect(uses.length).toBe(3);
    for (const u of uses) expect(u.producer).toBe(guestCtx(1));
  });

  it('on ERAPS hardware without AutoIBRS, KVM’s RETs use only its own entries', () => {
    const f = makeKvm({ spec: 'eraps-amd', autoIbrs: false });
    f.kvm.enter();
    guestCalls(f, 3);
    f.kvm.handleExit(exitFor('hlt', undefined, 1000));
    expect(f.port.of(RAP_USE)).toEqual([]);
    expect(f.core.rapGuest.occupancy).toBe(3);
  });

  it('with AutoIBRS the host stack is gone at #VMEXIT: KVM’s RETs underflow, nothing is reported', () => {
    for (const spec of ['legacy', 'eraps-amd'] as const) {
      const f = makeKvm({ spec, autoIbrs: true, policy: 'hide' });
      f.kvm.enter();
      guestCalls(f, 3);
      f.kvm.handleExit(exitFor('hlt', undefined, 1000));
      expect(f.port.of(RAP_USE)).toEqual([]);
      expect(f.core.rapHost.stats.underflows).toBeGreaterThanOrEqual(f.core.timing.kvmCallDepth);
    }
  });
});

describe('PAUSE-loop exiting: the PLE window (grow_ple_window, shrink at vcpu_load)', () => {
  it('a PAUSE exit doubles the window up to its maximum; being scheduled out resets it at the next entry', () => {
    const { kvm, core } = makeKvm();
    const base = core.timing.pleWindow;
    expect(kvm.enter().pleAfter).toBe(base * core.timing.pauseLoop);
    kvm.handleExit({ ...exitFor('pause'), cpl: 0 });
    expect(kvm.pauseFilterCount).toBe(2 * base);
    for (let i = 0; i < 10; i++) kvm.handleExit({ ...exitFor('pause'), cpl: 0 });
    expect(kvm.pauseFilterCount).toBe(core.timing.pleWindowMax);
    expect(kvm.enter().pleAfter).toBe(core.timing.pleWindowMax * core.timing.pauseLoop);
    kvm.scheduledOut = true;
    expect(kvm.enter().pleAfter).toBe(base * core.timing.pauseLoop);
    expect(kvm.pauseFilterCount).toBe(base);
  });

  it("the exit's CPL is what directed yield later reads (preempted_in_kernel); PAUSE asks for kvm_vcpu_on_spin", () => {
    const { kvm } = makeKvm();
    expect(kvm.handleExit({ ...exitFor('intr'), cpl: 3 }).onSpin).toBeUndefined();
    expect(kvm.inKernelAtExit).toBe(false);
    expect(kvm.handleExit({ ...exitFor('pause'), cpl: 0 }).onSpin).toEqual({ yieldToKernelMode: true });
    expect(kvm.inKernelAtExit).toBe(true);
  });
});
