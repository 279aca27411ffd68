import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NS } from '../../src/actors/time.js';
import { RapChecker, type RapCheckerConfig, type ViewCpuid } from '../../src/check/rapChecker.js';
import type { Violation } from '../../src/check/violation.js';
import { encodeContext, KERNEL_PROCESS } from '../../src/hw/context.js';
import type { ActionObs, RapUseObs, StuffObs } from '../../src/hw/observations.js';
import { type RapAction, SPECS, type SpecVariant } from '../../src/hw/spec.js';

const host = (process: number, view = 0) => encodeContext({ world: 'host', level: 0, vm: 0, view, process });
const guest = (process: number, view = 0, vm = 0, level = 1) =>
  encodeContext({ world: 'guest', level, vm, view, process });

const ERAPS64: ViewCpuid = { eraps: true, rapEntries: 64 };
const NO_ERAPS: ViewCpuid = { eraps: false, rapEntries: 32 };

function checker(
  spec: SpecVariant,
  cpuid: ViewCpuid | ((ctx: number) => ViewCpuid) = spec === 'legacy' ? NO_ERAPS : ERAPS64,
): RapChecker {
  const cfg: RapCheckerConfig = {
    spec,
    cpuidOf: typeof cpuid === 'function' ? cpuid : () => cpuid,
    vmName: (vm) => `vm${vm}`,
  };
  return new RapChecker(cfg);
}

function action(ctx: number, a: RapAction | 'ibpb', over: Partial<ActionObs> = {}): ActionObs {
  return {
    pcpu: 0,
    ctx,
    action: a,
    handling: 'native',
    cleared: false,
    microarch: false,
    detail: 'test',
    ...over,
  };
}

function use(consumer: number, producer: number, pushedAt: number, over: Partial<RapUseObs> = {}): RapUseObs {
  return { pcpu: 0, consumer, producer, pushedAt, predicted: false, ...over };
}

function stuff(ctx: number, calls: number, rapEntries: number): StuffObs {
  return { pcpu: 0, ctx, calls, rapEntries };
}

const props = (c: RapChecker) => c.violations().map((v) => v.property);

/** Push at 100 ns by `producer`, `act` at 200 ns, RET at 300 ns by `consumer`. */
function pushActUse(
  c: RapChecker,
  producer: number,
  consumer: number,
  act: (c: RapChecker, t: number) => void,
): Violation[] {
  act(c, 200 * NS);
  c.onRapUse(300 * NS, use(consumer, producer, 100 * NS));
  return c.violations();
}

describe('RapChecker: promised clears by action', () => {
  it('eraps-amd: an entry surviving the consumer view’s MOV CR3 is one rap-promised-clear with the causal chain', () => {
    const c = checker('eraps-amd');
    const vs = pushActUse(c, host(0), host(1), (k, t) => k.onAction(t, action(host(0), 'mov-cr3')));
    expect(vs).toHaveLength(1);
    const v = vs[0]!;
    expect(v.property).toBe('rap-promised-clear');
    expect(v.promise).toMatch(/MOV CR3/);
    expect(v.promise).toMatch(/eraps-amd/);
    expect(v.because.length).toBeGreaterThan(0);
    expect(v.because).toMatch(/MOV CR3/);
    expect(v.events).toHaveLength(3);
    expect(v.events[0]).toMatch(/CALL pushed/);
    expect(v.events[0]).toMatch(/^100ns/);
    expect(v.events[1]).toMatch(/MOV CR3/);
    expect(v.events[1]).toMatch(/^200ns/);
    expect(v.events[2]).toMatch(/RET used/);
    expect(v.events[2]).toMatch(/^300ns/);
    expect(v).toMatchObject({
      atNs: 300,
      pcpu: 0,
      occurrences: 1,
      consumer: { world: 'host', vm: null, vcpu: null, level: 0, process: 1 },
      producer: { world: 'host', vm: null, vcpu: null, level: 0, process: 0, atNs: 100 },
    });
  });

  it('also for the same process: its own MOV CR3 was promised to clear its own entries', () => {
    const c = checker('eraps-amd');
    const vs = pushActUse(c, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'mov-cr3')));
    expect(vs.map((v) => v.property)).toEqual(['rap-promised-clear']);
  });

  it('says why no clear reached the hardware, or that the hardware cleared and the entry survived', () => {
    const a = checker('eraps-amd');
    pushActUse(a, host(0), host(1), (k, t) =>
      k.onAction(t, action(host(0), 'mov-cr3', { handling: 'intercepted', detail: 'npt=false' })),
    );
    expect(a.violations()[0]!.because).toMatch(/npt=false/);
    expect(a.violations()[0]!.because).toMatch(/no clear reached the hardware/);
    const b = checker('eraps-amd');
    pushActUse(b, host(0), host(1), (k, t) => k.onAction(t, action(host(0), 'mov-cr3', { cleared: true })));
    expect(b.violations()[0]!.because).toMatch(/cleared the RAP, yet the entry survived/);
  });

  it('legacy: the same sequence promises nothing; differing processes give only rap-cross-context', () => {
    const c = checker('legacy');
    const vs = pushActUse(c, host(0), host(1), (k, t) => k.onAction(t, action(host(0), 'mov-cr3')));
    expect(vs.map((v) => v.property)).toEqual(['rap-cross-context']);
    expect(vs[0]!.promise).toMatch(/none/);
    // The advisory names the unpromised MOV CR3 that ran between push and use.
    expect(vs[0]!.events.some((e) => /MOV CR3/.test(e))).toBe(true);
    expect(vs[0]!.events[0]).toMatch(/CALL pushed/);
    expect(vs[0]!.events.at(-1)).toMatch(/RET used/);
  });

  it('legacy: same producer and consumer → nothing at all', () => {
    const c = checker('legacy');
    expect(pushActUse(c, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'mov-cr3')))).toEqual([]);
  });

  it('eraps-cr3: INVPCID type 1 promises nothing (cross-context only when processes differ)', () => {
    const a = checker('eraps-cr3');
    const vs = pushActUse(a, host(0), host(1), (k, t) => k.onAction(t, action(host(0), 'invpcid-1')));
    expect(vs.map((v) => v.property)).toEqual(['rap-cross-context']);
    const b = checker('eraps-cr3');
    expect(pushActUse(b, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'invpcid-1')))).toEqual(
      [],
    );
  });

  it('eraps-amd and eraps-apm: INVPCID type 1 is promised', () => {
    for (const spec of ['eraps-amd', 'eraps-apm'] as const) {
      const c = checker(spec);
      expect(
        pushActUse(c, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'invpcid-1'))).map(
          (v) => v.property,
        ),
      ).toEqual(['rap-promised-clear']);
    }
  });

  it('WRMSR to a listed MSR is promised on eraps-apm only', () => {
    const expected: Record<SpecVariant, boolean> = {
      legacy: false,
      'eraps-apm': true,
      'eraps-amd': false,
      'eraps-cr3': false,
    };
    for (const spec of SPECS) {
      const c = checker(spec);
      const vs = pushActUse(c, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'wrmsr-msrlist')));
      expect(vs.length, spec).toBe(expected[spec] ? 1 : 0);
    }
  });

  it('a promised action by a view whose CPUID lacks ERAPS is no belief', () => {
    const c = checker('eraps-amd', NO_ERAPS);
    expect(pushActUse(c, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'mov-cr3')))).toEqual([]);
  });

  it('IBPB is never a belief of the checker', () => {
    const c = checker('eraps-amd');
    expect(
      pushActUse(c, host(0), host(0), (k, t) => k.onAction(t, action(host(0), 'ibpb', { cleared: true }))),
    ).toEqual([]);
  });

  it('a promised action of another view covers nothing here', () => {
    const c = checker('eraps-amd');
    expect(
      pushActUse(c, host(0, 0), host(0, 0), (k, t) => k.onAction(t, action(host(0, 1), 'mov-cr3'))),
    ).toEqual([]);
  });

  it('an action after the use does not count, but covers a later use', () => {
    const c = checker('eraps-amd');
    c.onRapUse(300 * NS, use(host(0), host(0), 100 * NS));
    c.onAction(400 * NS, action(host(0), 'mov-cr3'));
    expect(c.violations()).toEqual([]);
    c.onRapUse(500 * NS, use(host(0), host(0), 100 * NS));
    expect(props(c)).toEqual(['rap-promised-clear']);
  });

  it('an action before the push does not count', () => {
    const c = checker('eraps-amd');
    c.onAction(50 * NS, action(host(0), 'mov-cr3'));
    c.onRapUse(300 * NS, use(host(0), host(0), 100 * NS));
    expect(c.violations()).toEqual([]);
  });

  it('names the first belief after the push when several followed it', () => {
    const c = checker('eraps-amd');
    c.onAction(150 * NS, action(host(0), 'invpcid-2'));
    c.onAction(200 * NS, action(host(0), 'mov-cr3'));
    c.onRapUse(300 * NS, use(host(0), host(0), 100 * NS));
    const [v] = c.violations();
    expect(v!.promise).toMatch(/INVPCID type 2/);
    expect(v!.events[1]).toMatch(/^150ns/);
  });
});

describe('RapChecker: stuffing', () => {
  it('a stuffing as long as CPUID’s RAP size is a believed clear; `because` names the RAP size when it is larger', () => {
    const c = checker('legacy', NO_ERAPS);
    const vs = pushActUse(c, host(0), host(1), (k, t) => k.onStuff(t, stuff(host(0), 32, 64)));
    expect(vs.map((v) => v.property)).toEqual(['rap-promised-clear']);
    expect(vs[0]!.promise).toMatch(/stuffing/i);
    expect(vs[0]!.promise).toMatch(/32/);
    expect(vs[0]!.because).toMatch(/64/);
    expect(vs[0]!.because).toMatch(/32 older entries survived/);
    expect(vs[0]!.events[1]).toMatch(/stuffing, 32 CALLs/);
  });

  it('a stuffing covering the whole RAP is a belief too, with a different explanation', () => {
    const c = checker('legacy', NO_ERAPS);
    const vs = pushActUse(c, host(0), host(1), (k, t) => k.onStuff(t, stuff(host(0), 32, 32)));
    expect(vs.map((v) => v.property)).toEqual(['rap-promised-clear']);
    expect(vs[0]!.because).not.toMatch(/survived beneath/);
    expect(vs[0]!.because).toMatch(/overwrote the whole RAP/);
  });

  it('the believed size is the view’s CPUID: 64 with ERAPS, so 32 CALLs are too short to believe in', () => {
    const c = checker('eraps-cr3', ERAPS64);
    expect(pushActUse(c, host(0), host(0), (k, t) => k.onStuff(t, stuff(host(0), 32, 64)))).toEqual([]);
    const d = checker('eraps-cr3', ERAPS64);
    expect(
      pushActUse(d, host(0), host(0), (k, t) => k.onStuff(t, stuff(host(0), 64, 64))).map((v) => v.property),
    ).toEqual(['rap-promised-clear']);
  });

  it('a shorter stuffing is no belief: same process → nothing, other process → cross-context naming the stuffing', () => {
    const a = checker('legacy', NO_ERAPS);
    expect(pushActUse(a, host(0), host(0), (k, t) => k.onStuff(t, stuff(host(0), 16, 32)))).toEqual([]);
    const b = checker('legacy', NO_ERAPS);
    const vs = pushActUse(b, host(0), host(1), (k, t) => k.onStuff(t, stuff(host(0), 31, 32)));
    expect(vs.map((v) => v.property)).toEqual(['rap-cross-context']);
    expect(vs[0]!.events.some((e) => /stuffing, 31 CALLs/.test(e))).toBe(true);
  });
});

describe('RapChecker: host/guest and cross-context', () => {
  for (const spec of ['eraps-apm', 'eraps-amd', 'eraps-cr3'] as const) {
    it(`${spec}: a host RET using a guest entry is rap-host-guest, and vice versa`, () => {
      const c = checker(spec);
      c.onRapUse(300 * NS, use(host(KERNEL_PROCESS), guest(1), 100 * NS));
      c.onRapUse(400 * NS, use(guest(1), host(KERNEL_PROCESS), 100 * NS));
      const vs = c.violations();
      expect(vs.map((v) => v.property)).toEqual(['rap-host-guest', 'rap-host-guest']);
      expect(vs[0]!.consumer).toMatchObject({ world: 'host', process: null });
      expect(vs[0]!.producer).toMatchObject({ world: 'guest', vm: 'vm0', vcpu: 0, level: 1, process: 1 });
      expect(vs[0]!.because).toMatch(/host-mode RET used a guest-pushed entry/);
      expect(vs[0]!.events).toHaveLength(2);
    });
  }

  it('legacy: a host RET using a guest entry is only rap-cross-context (no tagging)', () => {
    const c = checker('legacy');
    c.onRapUse(300 * NS, use(host(KERNEL_PROCESS), guest(1), 100 * NS));
    expect(props(c)).toEqual(['rap-cross-context']);
    expect(c.violations()[0]!.because).toMatch(/legacy/);
  });

  // Regression: on a spec without host/guest tagging, a world-crossing use went straight to the
  // advisory rap-cross-context without consulting the consumer's beliefs; a host that stuffed the
  // RAP (sized by its CPUID) believes the guest's entries gone, so docs/domain.md §5 makes a
  // surviving one rap-promised-clear.
  it('legacy: a host RET using a guest entry that a believed host stuffing should have covered is rap-promised-clear', () => {
    const c = checker('legacy', NO_ERAPS);
    c.onStuff(200 * NS, stuff(host(KERNEL_PROCESS), 32, 64));
    c.onRapUse(300 * NS, use(host(KERNEL_PROCESS), guest(1), 100 * NS));
    expect(props(c)).toEqual(['rap-promised-clear']);
  });

  it('cross-context covers other VMs and nesting levels, not only other processes', () => {
    const c = checker('eraps-amd');
    c.onRapUse(300 * NS, use(guest(1, 0, 0), guest(1, 0, 1), 100 * NS)); // another VM, same "view" numbers
    c.onRapUse(310 * NS, use(guest(1, 0, 0, 1), guest(1, 0, 0, 2), 100 * NS)); // L1 vs L2
    expect(props(c)).toEqual(['rap-cross-context', 'rap-cross-context']);
  });

  it('the advisory explanation says nothing cleared when no action ran in between', () => {
    const c = checker('eraps-amd');
    c.onRapUse(300 * NS, use(host(1), host(0), 100 * NS));
    expect(c.violations()[0]!.because).toMatch(/nothing cleared or stuffed/);
    expect(c.violations()[0]!.events).toHaveLength(2);
  });
});

describe('RapChecker: folding', () => {
  it('identical uses fold into one violation with an occurrence count', () => {
    const c = checker('eraps-amd');
    c.onAction(200 * NS, action(host(0), 'mov-cr3'));
    for (let i = 0; i < 5; i++) c.onRapUse((300 + i) * NS, use(host(1), host(0), (100 + i) * NS));
    const vs = c.violations();
    expect(vs).toHaveLength(1);
    expect(vs[0]!.occurrences).toBe(5);
    expect(vs[0]!.atNs).toBe(300); // first appearance
  });

  it('folds cross-context and host-guest findings too', () => {
    const a = checker('legacy');
    for (let i = 0; i < 3; i++) a.onRapUse((300 + i) * NS, use(host(1), host(0), 100 * NS));
    expect(a.violations().map((v) => [v.property, v.occurrences])).toEqual([['rap-cross-context', 3]]);
    const b = checker('eraps-cr3');
    for (let i = 0; i < 4; i++) b.onRapUse((300 + i) * NS, use(host(1), guest(0), 100 * NS));
    expect(b.violations().map((v) => [v.property, v.occurrences])).toEqual([['rap-host-guest', 4]]);
  });

  it('keeps distinct producers, consumers, pCPUs and causes apart, in order of first appearance', () => {
    const c = checker('eraps-amd');
    c.onAction(200 * NS, action(host(0), 'mov-cr3'));
    c.onRapUse(300 * NS, use(host(1), host(0), 100 * NS));
    c.onRapUse(301 * NS, use(host(1), host(2), 100 * NS)); // another producer
    c.onRapUse(302 * NS, use(host(3), host(0), 100 * NS)); // another consumer
    c.onRapUse(303 * NS, use(host(1), host(0), 100 * NS, { pcpu: 1 })); // another pCPU
    c.onAction(400 * NS, action(host(0), 'mov-cr3'));
    c.onRapUse(500 * NS, use(host(1), host(0), 350 * NS)); // another cause (the second MOV CR3)
    c.onRapUse(501 * NS, use(host(1), host(0), 100 * NS)); // same as the first
    const vs = c.violations();
    expect(vs.map((v) => v.atNs)).toEqual([300, 301, 302, 303, 500]);
    expect(vs.map((v) => v.occurrences)).toEqual([2, 1, 1, 1, 1]);
  });
});

// ---- properties -----------------------------------------------------------------------------

const ACTIONS: (RapAction | 'ibpb')[] = [
  'mov-cr3',
  'invpcid-0',
  'invpcid-1',
  'invpcid-2',
  'cr4-pge',
  'wrmsr-msrlist',
  'efer',
  'invlpg',
  'invlpgb',
  'interrupt',
  'ibpb',
];

type Ev =
  | { k: 'act'; t: number; o: ActionObs }
  | { k: 'stuff'; t: number; o: StuffObs }
  | { k: 'use'; t: number; o: RapUseObs };

const ctxArb = fc
  .record({
    world: fc.constantFrom<'host' | 'guest'>('host', 'guest'),
    level: fc.integer({ min: 0, max: 2 }),
    vm: fc.integer({ min: 0, max: 2 }),
    view: fc.integer({ min: 0, max: 3 }),
    process: fc.integer({ min: 0, max: 3 }),
  })
  .map((c) => encodeContext(c));

const tArb = fc.integer({ min: 0, max: 1000 }).map((x) => x * NS);

function evArb(ctx: fc.Arbitrary<number>, pcpu: fc.Arbitrary<number>): fc.Arbitrary<Ev> {
  return fc.oneof(
    fc
      .record({
        t: tArb,
        ctx,
        pcpu,
        a: fc.constantFrom(...ACTIONS),
        cleared: fc.boolean(),
        h: fc.constantFrom('native', 'intercepted', 'emulated') as fc.Arbitrary<ActionObs['handling']>,
      })
      .map(
        (r): Ev => ({
          k: 'act',
          t: r.t,
          o: {
            pcpu: r.pcpu,
            ctx: r.ctx,
            action: r.a,
            handling: r.h,
            cleared: r.cleared,
            microarch: false,
            detail: 'x',
          },
        }),
      ),
    fc
      .record({ t: tArb, ctx, pcpu, calls: fc.constantFrom(8, 16, 32, 64), rap: fc.constantFrom(32, 64) })
      .map(
        (r): Ev => ({
          k: 'stuff',
          t: r.t,
          o: { pcpu: r.pcpu, ctx: r.ctx, calls: r.calls, rapEntries: r.rap },
        }),
      ),
    fc
      .record({
        t: tArb,
        consumer: ctx,
        producer: ctxArb,
        pcpu,
        back: fc.integer({ min: 0, max: 500 }),
        predicted: fc.boolean(),
      })
      .map(
        (r): Ev => ({
          k: 'use',
          t: r.t,
          o: {
            pcpu: r.pcpu,
            consumer: r.consumer,
            producer: r.producer,
            pushedAt: Math.max(0, r.t - r.back * NS),
            predicted: r.predicted,
          },
        }),
      ),
  );
}

function feed(c: RapChecker, evs: Ev[]): void {
  for (const e of evs) {
    if (e.k === 'act') c.onAction(e.t, e.o);
    else if (e.k === 'stuff') c.onStuff(e.t, e.o);
    else c.onRapUse(e.t, e.o);
  }
}

/** The checkers are fed in global time order (the window loop sorts observations). */
const byTime = (evs: Ev[]): Ev[] => [...evs].sort((a, b) => a.t - b.t);

const cpuidFor =
  (seed: number) =>
  (ctx: number): ViewCpuid => {
    const h = (Math.floor(ctx / 4096) * 2654435761 + seed) >>> 0;
    return h % 2 === 0 ? { eraps: true, rapEntries: 64 } : { eraps: false, rapEntries: 32 };
  };

describe('RapChecker: properties', () => {
  it('is deterministic: the same observations give identical violations (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SPECS),
        fc.integer(),
        fc.array(evArb(ctxArb, fc.integer({ min: 0, max: 3 })), { maxLength: 60 }),
        (spec, seed, raw) => {
          const evs = byTime(raw);
          const a = checker(spec, cpuidFor(seed));
          const b = checker(spec, cpuidFor(seed));
          feed(a, evs);
          feed(b, structuredClone(evs));
          expect(b.violations()).toEqual(a.violations());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a RET of the pushing context with no believed action in between is never a violation, whatever other views do (property)', () => {
    // Our context: host, view (pCPU) 0, process 0. Its own view may run actions the spec does not
    // promise and stuffings shorter than its CPUID's size at any time, and believed ones before the
    // push only. Other views (any world/level/VM, views 1..3) do anything, on any pCPU, but their
    // RETs run on pCPUs 1..3 so that every violation on pCPU 0 would be ours.
    const ours = host(0, 0);
    const otherCtx = ctxArb.filter((x) => Math.floor(x / 4096) !== Math.floor(ours / 4096));
    const UNPROMISED: Record<SpecVariant, RapAction[]> = {
      legacy: ['mov-cr3', 'invpcid-1', 'cr4-pge', 'wrmsr-msrlist', 'invlpg'],
      'eraps-apm': ['invpcid-0', 'invlpg', 'invlpgb', 'efer', 'interrupt', 'cr0-wp'],
      'eraps-amd': ['invpcid-0', 'invlpg', 'invlpgb', 'efer', 'wrmsr-msrlist', 'interrupt'],
      'eraps-cr3': [
        'invpcid-0',
        'invpcid-1',
        'invpcid-2',
        'cr4-pge',
        'wrmsr-msrlist',
        'wrmsr-mtrr',
        'invlpgb',
      ],
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...SPECS),
        fc.boolean(),
        fc.integer({ min: 100, max: 800 }),
        fc.integer({ min: 1, max: 200 }),
        fc.array(evArb(otherCtx, fc.integer({ min: 0, max: 3 })), { maxLength: 40 }),
        fc.array(
          fc.record({
            t: tArb,
            i: fc.nat(),
            calls: fc.integer({ min: 0, max: 31 }),
            stuffing: fc.boolean(),
            cleared: fc.boolean(),
          }),
          { maxLength: 8 },
        ),
        fc.array(fc.integer({ min: 0, max: 99 }), { maxLength: 3 }),
        (spec, eraps, pushNs, gapNs, raw, ownNoise, beliefsBefore) => {
          const ourCpuid: ViewCpuid = eraps
            ? { eraps: true, rapEntries: 64 }
            : { eraps: false, rapEntries: 32 };
          const cpuid = (ctx: number): ViewCpuid =>
            Math.floor(ctx / 4096) === Math.floor(ours / 4096) ? ourCpuid : cpuidFor(3)(ctx);
          const pushedAt = pushNs * NS;
          const t = pushedAt + gapNs * NS;
          const evs: Ev[] = raw.map((e) =>
            e.k === 'use' ? { ...e, o: { ...e.o, pcpu: 1 + (e.o.pcpu % 3) } } : e,
          );
          for (const n of ownNoise) {
            if (n.stuffing) {
              evs.push({
                k: 'stuff',
                t: n.t,
                o: stuff(ours, Math.min(n.calls, ourCpuid.rapEntries - 1), 64),
              });
            } else {
              const list = UNPROMISED[spec];
              evs.push({
                k: 'act',
                t: n.t,
                o: action(ours, list[n.i % list.length]!, { cleared: n.cleared }),
              });
            }
          }
          // Believed actions strictly before the push: MOV CR3 and a full stuffing.
          for (const b of beliefsBefore) {
            const tb = Math.floor((pushedAt * b) / 100);
            if (tb < pushedAt) {
              evs.push({ k: 'act', t: tb, o: action(ours, 'mov-cr3') });
              evs.push({ k: 'stuff', t: tb, o: stuff(ours, 64, 64) });
            }
          }
          evs.push({ k: 'use', t, o: use(ours, ours, pushedAt) });
          const c = checker(spec, cpuid);
          feed(c, byTime(evs));
          expect(c.violations().filter((v) => v.pcpu === 0)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sanity check of the property above: one believed action in between does yield a violation', () => {
    const c = checker('eraps-cr3');
    c.onAction(150 * NS, action(host(0), 'mov-cr3'));
    c.onRapUse(200 * NS, use(host(0), host(0), 100 * NS));
    expect(c.violations().filter((v) => v.pcpu === 0)).toHaveLength(1);
  });
});
