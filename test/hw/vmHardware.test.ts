import { describe, expect, it } from 'vitest';
import { Stream } from '../../src/actors/prng.js';
import { CoreHw, type Ratio } from '../../src/hw/core.js';
import { SPECS, type SpecVariant } from '../../src/hw/spec.js';
import { resolveTiming } from '../../src/hw/timing.js';
import { TLB_CONTROL, type TlbControl, type Vmcb } from '../../src/hw/vmcb.js';

/**
 * The hardware facts of docs/domain.md §2 that concern guest mode: VMCB CLEAR_RAP,
 * ALLOW_LARGER_RAP (32 entries without it), host/guest tagging, TLB_CONTROL, microarch clears on
 * a TLB-flushing VMRUN, AutoIBRS on #VMEXIT, and a guest's own MOV CR3 executed natively.
 */

const timing = resolveTiming(3_000_000_000);
const ERAPS: SpecVariant[] = ['eraps-apm', 'eraps-amd', 'eraps-cr3'];

function makeCore(spec: SpecVariant, opts: { microarchClears?: Ratio; rapEntries?: number } = {}): CoreHw {
  return new CoreHw(
    {
      index: 0,
      socket: 0,
      spec,
      rapEntries: opts.rapEntries ?? 64,
      microarchClears: opts.microarchClears ?? { num: 0, den: 1 },
      ibpbClearsRap: true,
      timing,
    },
    Stream.child(1, 'x'),
  );
}

function vmcb(
  o: { asid?: number; tlbControl?: TlbControl; allowLargerRap?: boolean; clearRap?: boolean } = {},
): Vmcb {
  return {
    name: 'vmcb01',
    asid: o.asid ?? 1,
    tlbControl: o.tlbControl ?? TLB_CONTROL.DO_NOTHING,
    erapCtl: { allowLargerRap: o.allowLargerRap ?? false, clearRap: o.clearRap ?? false },
    intercepts: {
      cr3Write: false,
      cr4Write: true,
      cr0Write: true,
      invpcid: false,
      invlpg: false,
      wrmsr: true,
      hlt: true,
      vmrun: true,
    },
    npt: true,
  };
}

const HOST_CTX = 11;
const GUEST_CTX = 22;

/** CALLs in the core's current mode, addresses base, base+1, … */
function calls(core: CoreHw, n: number, base: number, ctx: number): void {
  for (let i = 0; i < n; i++) core.rap.push(base + i, ctx, core.candidateEpoch, i, false);
}

/** RETs in the core's current mode, expecting base+n-1 … base; returns the addresses the RAP gave. */
function rets(core: CoreHw, n: number, base: number): (number | null)[] {
  const out: (number | null)[] = [];
  const rap = core.rap;
  for (let i = n - 1; i >= 0; i--) {
    const slot = rap.pop(base + i);
    out.push(slot < 0 ? null : rap.addr[slot]!);
  }
  return out;
}

describe('VMRUN with CLEAR_RAP (VMCB bit 41)', () => {
  for (const spec of ERAPS) {
    it(`clears the guest RAP before the guest runs on ${spec}`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 10, 0x100, GUEST_CTX);
      core.vmexit(false);
      expect(core.rapGuest.occupancy).toBe(10);
      const r = core.vmrun(vmcb({ allowLargerRap: true, clearRap: true }));
      expect(core.mode).toBe('guest');
      expect(core.rapGuest.occupancy).toBe(0);
      expect(r.effect).toMatchObject({
        action: 'vmrun-clear-rap',
        promised: true,
        cleared: true,
        microarch: false,
      });
      expect(core.clears['vmrun-clear-rap']).toBe(1);
      // The guest's RETs find nothing from before the VMRUN.
      expect(rets(core, 3, 0x100)).toEqual([null, null, null]);
    });
  }

  it('does nothing on legacy hardware (no ERAPS, no such bit)', () => {
    const core = makeCore('legacy');
    core.vmrun(vmcb());
    calls(core, 10, 0x100, GUEST_CTX);
    core.vmexit(false);
    const r = core.vmrun(vmcb({ clearRap: true }));
    expect(core.rapGuest.occupancy).toBe(10);
    expect(r.effect?.cleared ?? false).toBe(false);
    expect(core.clears['vmrun-clear-rap']).toBeUndefined();
    expect(rets(core, 10, 0x100)).toEqual(Array.from({ length: 10 }, (_, i) => 0x100 + 9 - i));
  });

  for (const spec of ERAPS) {
    it(`does not clear without CLEAR_RAP on ${spec}`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 10, 0x100, GUEST_CTX);
      core.vmexit(false);
      const r = core.vmrun(vmcb({ allowLargerRap: true }));
      expect(r.effect).toBeUndefined();
      expect(core.rapGuest.occupancy).toBe(10);
    });
  }
});

describe('guest RAP size and ALLOW_LARGER_RAP (VMCB bit 40)', () => {
  for (const spec of ERAPS) {
    it(`keeps only 32 entries in guest mode without ALLOW_LARGER_RAP on ${spec}`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: false }));
      expect(core.rap).toBe(core.rapGuest);
      expect(core.rap.size).toBe(32);
      calls(core, 40, 0x1000, GUEST_CTX);
      expect(core.rap.occupancy).toBe(32);
      const got = rets(core, 40, 0x1000);
      // The 32 newest (0x1000+39 … 0x1000+8) predicted; the 8 oldest are gone.
      expect(got.slice(0, 32)).toEqual(Array.from({ length: 32 }, (_, i) => 0x1000 + 39 - i));
      expect(got.slice(32)).toEqual(Array(8).fill(null));
      expect(core.rap.stats).toMatchObject({ predicted: 32, underflows: 8, mispredicted: 0 });
    });

    it(`uses all 64 entries in guest mode with ALLOW_LARGER_RAP on ${spec}`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: true }));
      expect(core.rap.size).toBe(64);
      calls(core, 40, 0x1000, GUEST_CTX);
      const got = rets(core, 40, 0x1000);
      expect(got).toEqual(Array.from({ length: 40 }, (_, i) => 0x1000 + 39 - i));
      calls(core, 70, 0x2000, GUEST_CTX);
      expect(core.rap.occupancy).toBe(64);
    });

    it(`shrinks to 32 on a later VMRUN without ALLOW_LARGER_RAP, dropping the oldest, on ${spec}`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 40, 0x1000, GUEST_CTX);
      core.vmexit(false);
      core.vmrun(vmcb({ allowLargerRap: false }));
      expect(core.rap.occupancy).toBe(32);
      const got = rets(core, 40, 0x1000);
      expect(got.slice(0, 32)).toEqual(Array.from({ length: 32 }, (_, i) => 0x1000 + 39 - i));
      expect(got.slice(32)).toEqual(Array(8).fill(null));
    });

    it(`always gives host mode the full RAP on ${spec}`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: false }));
      core.vmexit(false);
      expect(core.mode).toBe('host');
      expect(core.rap).toBe(core.rapHost);
      expect(core.rap.size).toBe(64);
      calls(core, 64, 0x3000, HOST_CTX);
      expect(core.rap.occupancy).toBe(64);
      expect(rets(core, 64, 0x3000)).toEqual(Array.from({ length: 64 }, (_, i) => 0x3000 + 63 - i));
    });
  }

  it('gives guest mode min(32, size) entries on a RAP smaller than 32', () => {
    const core = makeCore('eraps-amd', { rapEntries: 16 });
    core.vmrun(vmcb({ allowLargerRap: false }));
    expect(core.rap.size).toBe(16);
  });

  it('host mode uses the full RAP on legacy hardware', () => {
    const core = makeCore('legacy', { rapEntries: 32 });
    expect(core.rapGuest).toBe(core.rapHost);
    calls(core, 32, 0x3000, HOST_CTX);
    expect(rets(core, 32, 0x3000)).toEqual(Array.from({ length: 32 }, (_, i) => 0x3000 + 31 - i));
  });
});

describe('host/guest tagging (APM §3.2.9)', () => {
  for (const spec of ERAPS) {
    it(`keeps host-pushed entries from guest-mode RETs and vice versa on ${spec}`, () => {
      const core = makeCore(spec);
      expect(core.rapGuest).not.toBe(core.rapHost);
      calls(core, 5, 0x100, HOST_CTX);
      core.vmrun(vmcb({ allowLargerRap: true }));
      // A guest RET finds no host entry.
      expect(rets(core, 1, 0x900)).toEqual([null]);
      calls(core, 3, 0x500, GUEST_CTX);
      core.vmexit(false);
      // The host's RETs get the host's own entries, never the guest's three.
      expect(rets(core, 5, 0x100)).toEqual([0x104, 0x103, 0x102, 0x101, 0x100]);
      expect(rets(core, 1, 0x999)).toEqual([null]);
      // The guest's entries are still there for the guest.
      core.vmrun(vmcb({ allowLargerRap: true }));
      expect(rets(core, 3, 0x500)).toEqual([0x502, 0x501, 0x500]);
    });
  }

  it('shares one stack between host and guest on legacy hardware', () => {
    const core = makeCore('legacy');
    expect(core.rapGuest).toBe(core.rapHost);
    calls(core, 5, 0x100, HOST_CTX);
    core.vmrun(vmcb());
    expect(core.rap).toBe(core.rapHost);
    // A guest-mode RET consumes a host-pushed entry.
    const slot = core.rap.pop(0x999);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(core.rap.addr[slot]).toBe(0x104);
    expect(core.rap.ctx[slot]).toBe(HOST_CTX);
    calls(core, 2, 0x500, GUEST_CTX);
    core.vmexit(false);
    // A host-mode RET consumes a guest-pushed entry.
    const s2 = core.rap.pop(0x103);
    expect(core.rap.addr[s2]).toBe(0x501);
    expect(core.rap.ctx[s2]).toBe(GUEST_CTX);
  });
});

describe('TLB_CONTROL at VMRUN', () => {
  /** Fills one page in host ASID 0, guest ASIDs 1 and 2 (PCID 1 each). */
  function fillTlb(core: CoreHw): { host: number; a1: number; a2: number } {
    const host = 0 * 4096 + 1;
    const a1 = 1 * 4096 + 1;
    const a2 = 2 * 4096 + 1;
    for (const s of [host, a1, a2]) core.tlb.fill(s, 7, 100);
    return { host, a1, a2 };
  }

  for (const spec of SPECS) {
    it(`TLB_CONTROL=3 flushes only that ASID's translations (${spec})`, () => {
      const core = makeCore(spec);
      const s = fillTlb(core);
      const r = core.vmrun(vmcb({ asid: 1, tlbControl: TLB_CONTROL.FLUSH_ASID }));
      expect(r.tlbFlushed).toBe(true);
      expect(core.asid).toBe(1);
      expect(core.tlb.lookup(s.a1, 7)).toBe(-1);
      expect(core.tlb.lookup(s.a2, 7)).toBe(100);
      expect(core.tlb.lookup(s.host, 7)).toBe(100);
    });

    it(`TLB_CONTROL=1 flushes every ASID (${spec})`, () => {
      const core = makeCore(spec);
      const s = fillTlb(core);
      const r = core.vmrun(vmcb({ asid: 1, tlbControl: TLB_CONTROL.FLUSH_ALL }));
      expect(r.tlbFlushed).toBe(true);
      expect(core.tlb.size).toBe(0);
      for (const sp of [s.a1, s.a2, s.host]) expect(core.tlb.lookup(sp, 7)).toBe(-1);
    });

    it(`TLB_CONTROL=0 flushes nothing (${spec})`, () => {
      const core = makeCore(spec);
      fillTlb(core);
      const r = core.vmrun(vmcb({ asid: 1, tlbControl: TLB_CONTROL.DO_NOTHING }));
      expect(r.tlbFlushed).toBe(false);
      expect(core.tlb.size).toBe(3);
    });
  }

  it('TLB_CONTROL=7 flushes that ASID only', () => {
    const core = makeCore('eraps-amd');
    const s = fillTlb(core);
    core.vmrun(vmcb({ asid: 2, tlbControl: TLB_CONTROL.FLUSH_ASID_LOCAL }));
    expect(core.tlb.lookup(s.a2, 7)).toBe(-1);
    expect(core.tlb.lookup(s.a1, 7)).toBe(100);
  });
});

describe('microarchitectural clears at a TLB-flushing VMRUN', () => {
  for (const spec of SPECS) {
    it(`microarchClears 1/1 makes a TLB-flushing VMRUN clear the RAP (${spec})`, () => {
      const core = makeCore(spec, { microarchClears: { num: 1, den: 1 } });
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 6, 0x100, GUEST_CTX);
      core.vmexit(false);
      const r = core.vmrun(vmcb({ allowLargerRap: true, tlbControl: TLB_CONTROL.FLUSH_ASID }));
      expect(r.effect).toMatchObject({
        action: 'vmrun-tlb-flush',
        promised: false,
        cleared: true,
        microarch: true,
      });
      expect(core.rapGuest.occupancy).toBe(0);
      expect(core.clears['microarch:vmrun-tlb-flush']).toBe(1);
    });

    it(`microarchClears 1/1 does not clear at a VMRUN that flushes nothing (${spec})`, () => {
      const core = makeCore(spec, { microarchClears: { num: 1, den: 1 } });
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 6, 0x100, GUEST_CTX);
      core.vmexit(false);
      const r = core.vmrun(vmcb({ allowLargerRap: true }));
      expect(r.effect?.cleared ?? false).toBe(false);
      expect(core.rapGuest.occupancy).toBe(6);
    });

    it(`microarchClears 0 never clears at a TLB-flushing VMRUN (${spec})`, () => {
      const core = makeCore(spec);
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 6, 0x100, GUEST_CTX);
      core.vmexit(false);
      const r = core.vmrun(vmcb({ allowLargerRap: true, tlbControl: TLB_CONTROL.FLUSH_ALL }));
      expect(r.effect).toMatchObject({ action: 'vmrun-tlb-flush', promised: false, cleared: false });
      expect(core.rapGuest.occupancy).toBe(6);
    });
  }
});

describe('AutoIBRS on #VMEXIT', () => {
  for (const spec of ERAPS) {
    it(`clears the host's tagged stack and leaves the guest's on ${spec}`, () => {
      const core = makeCore(spec);
      calls(core, 4, 0x100, HOST_CTX);
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 3, 0x500, GUEST_CTX);
      core.vmexit(true);
      expect(core.mode).toBe('host');
      expect(core.asid).toBe(0);
      expect(core.rapHost.occupancy).toBe(0);
      expect(core.rapGuest.occupancy).toBe(3);
      expect(core.clears['autoibrs-vmexit']).toBe(1);
    });
  }

  it('clears the shared stack on legacy hardware', () => {
    const core = makeCore('legacy');
    calls(core, 4, 0x100, HOST_CTX);
    core.vmrun(vmcb());
    calls(core, 3, 0x500, GUEST_CTX);
    core.vmexit(true);
    expect(core.rapHost.occupancy).toBe(0);
    expect(core.rapGuest.occupancy).toBe(0);
    expect(core.clears['autoibrs-vmexit']).toBe(1);
  });

  for (const spec of SPECS) {
    it(`clears nothing when AutoIBRS is off (${spec})`, () => {
      const core = makeCore(spec);
      calls(core, 4, 0x100, HOST_CTX);
      core.vmrun(vmcb({ allowLargerRap: true }));
      calls(core, 3, 0x500, GUEST_CTX);
      core.vmexit(false);
      expect(core.mode).toBe('host');
      expect(core.clears['autoibrs-vmexit']).toBeUndefined();
      if (spec === 'legacy') expect(core.rapHost.occupancy).toBe(7);
      else {
        expect(core.rapHost.occupancy).toBe(4);
        expect(core.rapGuest.occupancy).toBe(3);
      }
    });
  }
});

describe("a guest's own instructions executed natively in guest mode", () => {
  const cases: { name: string; act: (c: CoreHw) => unknown; clearsOn: SpecVariant[] }[] = [
    { name: 'MOV CR3', act: (c) => c.movCr3(2, false), clearsOn: ERAPS },
    { name: 'MOV CR3 NOFLUSH', act: (c) => c.movCr3(2, true), clearsOn: ERAPS },
    { name: 'INVPCID type 0', act: (c) => c.invpcid(0, 2, 3), clearsOn: [] },
    { name: 'INVPCID type 1', act: (c) => c.invpcid(1, 2, 0), clearsOn: ['eraps-apm', 'eraps-amd'] },
    { name: 'INVPCID type 2', act: (c) => c.invpcid(2, 0, 0), clearsOn: ['eraps-apm', 'eraps-amd'] },
    { name: 'CR4.PGE toggle', act: (c) => c.writeCr4('pge', 'toggle'), clearsOn: ['eraps-apm', 'eraps-amd'] },
    { name: 'CR0.WP clear', act: (c) => c.writeCr0('wp', 'clear'), clearsOn: [] },
    { name: 'WRMSR SYSCFG', act: (c) => c.wrmsr('SYSCFG'), clearsOn: ['eraps-apm'] },
    { name: 'INVLPG', act: (c) => c.invlpg(1, 3), clearsOn: [] },
  ];
  for (const cse of cases) {
    for (const spec of SPECS) {
      const clears = cse.clearsOn.includes(spec);
      it(`${cse.name} in guest mode ${clears ? 'clears' : 'does not clear'} the guest RAP on ${spec}`, () => {
        const core = makeCore(spec);
        core.vmrun(vmcb({ allowLargerRap: true }));
        calls(core, 5, 0x100, GUEST_CTX);
        cse.act(core);
        expect(core.mode).toBe('guest');
        expect(core.rapGuest.occupancy).toBe(clears ? 0 : 5);
      });
    }
  }

  it('a guest MOV CR3 flushes that PCID of the running ASID only', () => {
    const core = makeCore('eraps-amd');
    core.vmrun(vmcb({ asid: 1, allowLargerRap: true }));
    core.tlb.fill(core.space(2), 5, 1);
    core.tlb.fill(core.space(3), 5, 1);
    core.tlb.fill(2 * 4096 + 2, 5, 1); // same PCID, another ASID
    core.movCr3(2, false);
    expect(core.tlb.lookup(1 * 4096 + 2, 5)).toBe(-1);
    expect(core.tlb.lookup(1 * 4096 + 3, 5)).toBe(1);
    expect(core.tlb.lookup(2 * 4096 + 2, 5)).toBe(1);
  });
});
