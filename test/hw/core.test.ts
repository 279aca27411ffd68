import { describe, expect, it } from 'vitest';
import { Stream } from '../../src/actors/prng.js';
import { CoreHw, type RapEffect, type Ratio } from '../../src/hw/core.js';
import { SPECS, type SpecVariant } from '../../src/hw/spec.js';
import { resolveTiming } from '../../src/hw/timing.js';

const timing = resolveTiming(3_000_000_000);

function makeCore(
  spec: SpecVariant,
  opts: { microarchClears?: Ratio; ibpbClearsRap?: boolean; seed?: number } = {},
): CoreHw {
  return new CoreHw(
    {
      index: 0,
      socket: 0,
      spec,
      rapEntries: 64,
      microarchClears: opts.microarchClears ?? { num: 0, den: 1 },
      ibpbClearsRap: opts.ibpbClearsRap ?? true,
      timing,
    },
    Stream.child(opts.seed ?? 1, 'test'),
  );
}

function fill(core: CoreHw, n = 5): void {
  for (let i = 0; i < n; i++) core.rap.push(0x1000 + i, 1, core.candidateEpoch, i, false);
}

type Act = (c: CoreHw) => RapEffect | undefined;

/**
 * Each action of docs/domain.md §2 and the specs on which it must clear the RAP. `prepare` brings
 * the control registers into the state the action's transition starts from.
 */
interface Case {
  name: string;
  prepare?: (c: CoreHw) => void;
  act: Act;
  clearsOn: SpecVariant[];
}

const ERAPS: SpecVariant[] = ['eraps-apm', 'eraps-amd', 'eraps-cr3'];
const APM_AMD: SpecVariant[] = ['eraps-apm', 'eraps-amd'];
const NONE: SpecVariant[] = [];

const CASES: Case[] = [
  { name: 'MOV CR3', act: (c) => c.movCr3(2, false).effect, clearsOn: ERAPS },
  { name: 'MOV CR3 with NOFLUSH', act: (c) => c.movCr3(2, true).effect, clearsOn: ERAPS },
  { name: 'INVPCID type 0', act: (c) => c.invpcid(0, 1, 5).effect, clearsOn: NONE },
  { name: 'INVPCID type 1', act: (c) => c.invpcid(1, 1, 0).effect, clearsOn: APM_AMD },
  { name: 'INVPCID type 2', act: (c) => c.invpcid(2, 0, 0).effect, clearsOn: APM_AMD },
  { name: 'INVPCID type 3', act: (c) => c.invpcid(3, 0, 0).effect, clearsOn: APM_AMD },
  { name: 'CR4.PGE toggle', act: (c) => c.writeCr4('pge', 'toggle').effect, clearsOn: APM_AMD },
  { name: 'CR4.PGE clear (1→0)', act: (c) => c.writeCr4('pge', 'clear').effect, clearsOn: APM_AMD },
  {
    name: 'CR4.PGE set (0→1)',
    prepare: (c) => c.writeCr4('pge', 'clear'),
    act: (c) => c.writeCr4('pge', 'set').effect,
    clearsOn: APM_AMD,
  },
  {
    name: 'CR4.PGE set while already set (no change)',
    act: (c) => c.writeCr4('pge', 'set').effect,
    clearsOn: NONE,
  },
  { name: 'CR4.PAE toggle', act: (c) => c.writeCr4('pae', 'toggle').effect, clearsOn: APM_AMD },
  { name: 'CR4.PSE toggle', act: (c) => c.writeCr4('pse', 'toggle').effect, clearsOn: APM_AMD },
  {
    name: 'CR4.PSE set (0→1)',
    prepare: (c) => c.writeCr4('pse', 'clear'),
    act: (c) => c.writeCr4('pse', 'set').effect,
    clearsOn: APM_AMD,
  },
  { name: 'CR4.PKE 0→1', act: (c) => c.writeCr4('pke', 'set').effect, clearsOn: APM_AMD },
  {
    name: 'CR4.PKE 1→0',
    prepare: (c) => c.writeCr4('pke', 'set'),
    act: (c) => c.writeCr4('pke', 'clear').effect,
    clearsOn: NONE,
  },
  { name: 'CR4.PCIDE 1→0', act: (c) => c.writeCr4('pcide', 'clear').effect, clearsOn: APM_AMD },
  {
    name: 'CR4.PCIDE 0→1',
    prepare: (c) => c.writeCr4('pcide', 'clear'),
    act: (c) => c.writeCr4('pcide', 'set').effect,
    clearsOn: NONE,
  },
  { name: 'CR4.SMEP toggle', act: (c) => c.writeCr4('smep', 'toggle').effect, clearsOn: NONE },
  { name: 'CR0.PG clear (1→0)', act: (c) => c.writeCr0('pg', 'clear').effect, clearsOn: APM_AMD },
  {
    name: 'CR0.PG set (0→1)',
    prepare: (c) => c.writeCr0('pg', 'clear'),
    act: (c) => c.writeCr0('pg', 'set').effect,
    clearsOn: APM_AMD,
  },
  { name: 'CR0.WP clear', act: (c) => c.writeCr0('wp', 'clear').effect, clearsOn: NONE },
  {
    name: 'CR0.WP set',
    prepare: (c) => c.writeCr0('wp', 'clear'),
    act: (c) => c.writeCr0('wp', 'set').effect,
    clearsOn: NONE,
  },
  { name: 'WRMSR MTRR (by name)', act: (c) => c.wrmsr('MTRR').effect, clearsOn: APM_AMD },
  { name: 'WRMSR variable MTRR 0x200', act: (c) => c.wrmsr(0x200).effect, clearsOn: APM_AMD },
  { name: 'WRMSR fixed MTRR 0x250', act: (c) => c.wrmsr(0x250).effect, clearsOn: APM_AMD },
  { name: 'WRMSR default-type MTRR 0x2FF', act: (c) => c.wrmsr(0x2ff).effect, clearsOn: APM_AMD },
  ...['SYSCFG', 'TOM', 'TOM2', 'APIC_BASE', 'PREFETCH_CONTROL', 'IORR', 'SMMADDR', 'SMMMASK', 'ECS_BASE'].map(
    (msr): Case => ({ name: `WRMSR ${msr}`, act: (c) => c.wrmsr(msr).effect, clearsOn: ['eraps-apm'] }),
  ),
  { name: 'WRMSR SYSCFG by number', act: (c) => c.wrmsr(0xc0010010).effect, clearsOn: ['eraps-apm'] },
  { name: 'WRMSR EFER', act: (c) => c.wrmsr('EFER').effect, clearsOn: NONE },
  { name: 'WRMSR SPEC_CTRL', act: (c) => c.wrmsr('SPEC_CTRL').effect, clearsOn: NONE },
  { name: 'INVLPG', act: (c) => c.invlpg(1, 5).effect, clearsOn: NONE },
  { name: 'INVLPGB (AMD 2025-12-11: never)', act: (c) => c.invlpgb(1, 5).effect, clearsOn: NONE },
  { name: 'interrupt delivery', act: (c) => c.interrupt(), clearsOn: NONE },
];

describe('CoreHw: which actions clear the RAP, per spec (docs/domain.md §2)', () => {
  for (const k of CASES) {
    for (const spec of SPECS) {
      const clears = k.clearsOn.includes(spec);
      it(`${k.name} ${clears ? 'clears' : 'does not clear'} on ${spec}`, () => {
        const core = makeCore(spec);
        k.prepare?.(core);
        fill(core);
        const clearsBefore = Object.values(core.clears).reduce((a, b) => a + b, 0);
        const byCauseBefore = { ...core.clears };
        const effect = k.act(core);
        expect(core.rap.occupancy).toBe(clears ? 0 : 5);
        const clearsAfter = Object.values(core.clears).reduce((a, b) => a + b, 0);
        expect(clearsAfter - clearsBefore).toBe(clears ? 1 : 0);
        if (effect) {
          expect(effect.cleared).toBe(clears);
          // Without microarch extras, every clear is a promised one and vice versa.
          expect(effect.promised).toBe(clears);
          expect(effect.microarch).toBe(false);
          if (clears) expect((core.clears[effect.action] ?? 0) - (byCauseBefore[effect.action] ?? 0)).toBe(1);
        } else {
          expect(clears).toBe(false);
        }
      });
    }
  }

  it('no spec ever clears on an INVPCID type 0, INVLPG, INVLPGB, EFER or CR0.WP, and legacy on nothing', () => {
    // A cross-check of the table above from the other side: the unpromised actions.
    for (const spec of SPECS) {
      const core = makeCore(spec);
      fill(core);
      core.invpcid(0, 1, 5);
      core.invlpg(1, 5);
      core.invlpgb(1, 5);
      core.wrmsr('EFER');
      core.writeCr0('wp', 'toggle');
      core.interrupt();
      expect(core.rap.occupancy).toBe(5);
      expect(core.clears).toEqual({});
    }
    const legacy = makeCore('legacy', { ibpbClearsRap: false });
    fill(legacy);
    for (const k of CASES) k.act(legacy);
    expect(legacy.clears).toEqual({});
    expect(legacy.rap.occupancy).toBe(5);
  });
});

describe('CoreHw: IBPB', () => {
  for (const spec of SPECS) {
    it(`IBPB clears iff ibpbClearsRap (${spec})`, () => {
      const yes = makeCore(spec, { ibpbClearsRap: true });
      fill(yes);
      const a = yes.ibpb();
      expect(a.effect).toEqual({ action: 'ibpb', promised: true, cleared: true, microarch: false });
      expect(yes.rap.occupancy).toBe(0);
      expect(yes.clears).toEqual({ ibpb: 1 });
      expect(a.cost).toBe(timing.ibpb);

      const no = makeCore(spec, { ibpbClearsRap: false });
      fill(no);
      const b = no.ibpb();
      expect(b.effect.cleared).toBe(false);
      expect(no.rap.occupancy).toBe(5);
      expect(no.clears).toEqual({});
    });
  }

  it('WRMSR PRED_CMD (by name or 0x49) is an IBPB', () => {
    for (const msr of ['PRED_CMD', 0x49] as const) {
      const core = makeCore('legacy', { ibpbClearsRap: true });
      fill(core);
      const r = core.wrmsr(msr);
      expect(r.effect.action).toBe('ibpb');
      expect(r.effect.cleared).toBe(true);
      expect(r.cost).toBe(timing.ibpb);
      expect(core.clears).toEqual({ ibpb: 1 });
      expect(core.rap.occupancy).toBe(0);

      const old = makeCore('eraps-amd', { ibpbClearsRap: false });
      fill(old);
      expect(old.wrmsr(msr).effect).toMatchObject({ action: 'ibpb', cleared: false });
      expect(old.rap.occupancy).toBe(5);
    }
  });
});

describe('CoreHw: microarchitectural extras', () => {
  const always: Ratio = { num: 1, den: 1 };
  const eligible: [string, Act, string][] = [
    ['WRMSR SYSCFG', (c) => c.wrmsr('SYSCFG').effect, 'wrmsr-msrlist'],
    ['WRMSR TOM2', (c) => c.wrmsr('TOM2').effect, 'wrmsr-msrlist'],
    ['INVLPGB', (c) => c.invlpgb(1, 5).effect, 'invlpgb'],
    ['interrupt', (c) => c.interrupt(), 'interrupt'],
  ];

  for (const spec of SPECS) {
    for (const [name, act, action] of eligible) {
      it(`microarchClears 1/1: ${name} clears on ${spec}, marked microarch where the spec promises nothing`, () => {
        const core = makeCore(spec, { microarchClears: always });
        fill(core);
        const e = act(core)!;
        expect(e.cleared).toBe(true);
        expect(core.rap.occupancy).toBe(0);
        const promised = spec === 'eraps-apm' && action === 'wrmsr-msrlist';
        expect(e.promised).toBe(promised);
        expect(e.microarch).toBe(!promised);
        expect(core.clears).toEqual(promised ? { [action]: 1 } : { [`microarch:${action}`]: 1 });
      });
    }

    it(`microarchClears 1/1 does not touch non-eligible, unpromised events (INVLPG, EFER, INVPCID 0) on ${spec}`, () => {
      const core = makeCore(spec, { microarchClears: always });
      fill(core);
      for (const e of [
        core.invlpg(1, 5).effect,
        core.wrmsr('EFER').effect,
        core.invpcid(0, 1, 5).effect,
        core.writeCr0('wp', 'clear').effect!,
      ]) {
        expect(e.cleared).toBe(false);
        expect(e.microarch).toBe(false);
      }
      expect(core.rap.occupancy).toBe(5);
      expect(core.clears).toEqual({});
    });

    it(`microarchClears 0/1 never adds a clear on ${spec}`, () => {
      const core = makeCore(spec, { microarchClears: { num: 0, den: 1 } });
      fill(core);
      for (let i = 0; i < 50; i++) {
        core.interrupt();
        core.invlpgb(1, i);
      }
      expect(core.rap.occupancy).toBe(5);
      expect(core.clears).toEqual({});
    });
  }

  it('microarchClears 1/2 clears on about half of the eligible events, the same ones for the same seed', () => {
    const run = (seed: number): boolean[] => {
      const core = makeCore('eraps-cr3', { microarchClears: { num: 1, den: 2 }, seed });
      return Array.from({ length: 400 }, () => core.interrupt().cleared);
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    const n = a.filter(Boolean).length;
    expect(n).toBeGreaterThan(140);
    expect(n).toBeLessThan(260);
    expect(run(8)).not.toEqual(a);
  });
});

describe('CoreHw: candidate epoch', () => {
  // Entries remember the epoch at push; a RET on an entry from an older epoch is reported to the
  // checkers. Every action some context may believe cleared the RAP must therefore start a new one.
  for (const spec of SPECS) {
    it(`advances on every action ${spec} promises, on IBPB and on stuffing`, () => {
      const core = makeCore(spec, { ibpbClearsRap: false });
      for (const k of CASES) {
        k.prepare?.(core);
        const before = core.candidateEpoch;
        const effect = k.act(core);
        if (effect?.promised) expect(core.candidateEpoch, k.name).toBeGreaterThan(before);
        expect(core.candidateEpoch, k.name).toBeGreaterThanOrEqual(before);
      }
      let before = core.candidateEpoch;
      core.ibpb();
      expect(core.candidateEpoch).toBeGreaterThan(before);
      before = core.candidateEpoch;
      core.stuff(32, 9, 0);
      expect(core.candidateEpoch).toBeGreaterThan(before);
    });
  }

  it('stuffing entries carry the epoch before the bump, so entries pushed after the stuffing differ from them', () => {
    const core = makeCore('legacy');
    core.stuff(4, 9, 0);
    const stuffEpoch = core.rap.snapshot()[0]!.epoch;
    expect(core.candidateEpoch).not.toBe(stuffEpoch);
  });
});

describe('CoreHw: TLB effects', () => {
  function filled(): CoreHw {
    const core = makeCore('eraps-amd');
    for (const pcid of [1, 2, 3]) for (const page of [5, 6]) core.tlb.fill(pcid, page, pcid * 10 + page);
    return core;
  }
  const has = (c: CoreHw, pcid: number, page: number) => c.tlb.lookup(pcid, page) >= 0;

  it('MOV CR3 without NOFLUSH flushes the loaded PCID’s entries only, and switches the PCID', () => {
    const core = filled();
    const r = core.movCr3(2, false);
    expect(core.pcid).toBe(2);
    expect(has(core, 2, 5) || has(core, 2, 6)).toBe(false);
    expect(has(core, 1, 5) && has(core, 1, 6) && has(core, 3, 5) && has(core, 3, 6)).toBe(true);
    expect(r.cost).toBe(timing.cr3Reload);
  });

  it('MOV CR3 with NOFLUSH (CR4.PCIDE on) keeps every entry', () => {
    const core = filled();
    core.movCr3(2, true);
    expect(core.pcid).toBe(2);
    expect(core.tlb.size).toBe(6);
  });

  it('INVPCID 0 drops one page, 1 one PCID, 2 and 3 everything', () => {
    const c0 = filled();
    c0.invpcid(0, 2, 5);
    expect(has(c0, 2, 5)).toBe(false);
    expect(has(c0, 2, 6) && has(c0, 1, 5) && has(c0, 3, 5)).toBe(true);

    const c1 = filled();
    c1.invpcid(1, 2, 0);
    expect(has(c1, 2, 5) || has(c1, 2, 6)).toBe(false);
    expect(has(c1, 1, 5) && has(c1, 3, 6)).toBe(true);

    for (const type of [2, 3] as const) {
      const c = filled();
      const r = c.invpcid(type, 0, 0);
      expect(c.tlb.size).toBe(0);
      expect(r.cost).toBe(timing.invpcidAll);
    }
  });

  it('INVLPG and INVLPGB drop one page of one PCID', () => {
    for (const op of ['invlpg', 'invlpgb'] as const) {
      const core = filled();
      core[op](3, 6);
      expect(has(core, 3, 6)).toBe(false);
      expect(core.tlb.size).toBe(5);
    }
  });

  it('implicit invalidations flush the TLB: CR4.PGE toggle, CR0.PG change, WRMSR MTRR; SMEP and EFER do not', () => {
    const flushes: [string, (c: CoreHw) => void, boolean][] = [
      ['cr4 pge', (c) => c.writeCr4('pge', 'toggle'), true],
      ['cr4 pcide 1→0', (c) => c.writeCr4('pcide', 'clear'), true],
      ['cr0 pg', (c) => c.writeCr0('pg', 'clear'), true],
      ['mtrr', (c) => c.wrmsr('MTRR'), true],
      ['smep', (c) => c.writeCr4('smep', 'toggle'), false],
      ['efer', (c) => c.wrmsr('EFER'), false],
      ['cr0 wp', (c) => c.writeCr0('wp', 'clear'), false],
    ];
    for (const [name, act, flushesAll] of flushes) {
      const core = filled();
      act(core);
      expect(core.tlb.size, name).toBe(flushesAll ? 0 : 6);
    }
  });

  it('a CR4.PGE change costs the PGE toggle; an unchanged bit costs a plain CR write', () => {
    const core = makeCore('eraps-amd');
    expect(core.writeCr4('pge', 'toggle')).toMatchObject({ cost: timing.cr4PgeToggle, changed: true });
    expect(core.writeCr4('pge', 'clear')).toMatchObject({
      cost: timing.crWrite,
      changed: false,
      effect: undefined,
    });
  });
});

describe('CoreHw: stuffing', () => {
  it('pushes benign entries, counts the CALLs, and scales the cost with the number of CALLs', () => {
    const core = makeCore('legacy');
    fill(core, 3);
    const cost = core.stuff(32, 42, 100);
    expect(core.stuffingCalls).toBe(32);
    expect(core.rap.occupancy).toBe(35);
    const top = core.rap.snapshot().slice(-32);
    expect(top.every((e) => e.stuff && e.ctx === 42)).toBe(true);
    expect(cost).toBe(timing.rapStuff);
    expect(core.stuff(64, 42, 200)).toBe(2 * timing.rapStuff);
    expect(core.stuffingCalls).toBe(96);
    // A full stuffing overwrote every old entry.
    expect(core.rap.snapshot().every((e) => e.stuff)).toBe(true);
  });
});
