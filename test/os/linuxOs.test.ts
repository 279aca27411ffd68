import { describe, expect, it } from 'vitest';
import { SPECS, type SpecVariant } from '../../src/hw/spec.js';
import type { LinuxOsStats } from '../../src/os/linuxOs.js';
import { ScenarioError } from '../../src/scenario/errors.js';
import { LIMITS } from '../../src/scenario/limits.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import type { CoreStats } from '../../src/workers/compose.js';
import { type RunResult, runSimulation } from '../../src/workers/runSimulation.js';

/** Runs a bare-metal scenario in-process (one partition unless asked otherwise). */
async function run(yaml: string, workers = 1): Promise<RunResult> {
  return runSimulation(parseScenarioText(yaml, 'test.yaml'), { workers, inProcess: true });
}

function statsOf(r: RunResult, i = 0): { core: CoreStats; os: LinuxOsStats } {
  return r.actors[i]!.stats as { core: CoreStats; os: LinuxOsStats };
}

/** One core, `count` processes, no generated switches: only the script decides. */
function litmus(o: {
  spec: SpecVariant;
  script: string;
  stuffing?: string;
  rapEntries?: number;
  callDepth?: number;
  count?: number;
  until?: string;
}): string {
  return [
    'name: litmus',
    'seed: 1',
    `until: ${o.until ?? '20us'}`,
    'hardware:',
    '  cores: 1',
    `  spec: ${o.spec}`,
    ...(o.rapEntries ? [`  rapEntries: ${o.rapEntries}`] : []),
    'hostProcesses:',
    `  count: ${o.count ?? 2}`,
    `  stuffing: ${o.stuffing ?? 'never'}`,
    ...(o.callDepth ? [`  callDepth: ${o.callDepth}`] : []),
    '  contextSwitch: { every: 0 }',
    '  script:',
    `    0: ${o.script}`,
    '',
  ].join('\n');
}

const CROSS = '[ { call: 4 }, { switchTo: { process: 1 } }, { ret: 4 } ]';

describe('LinuxOs: context switch without stuffing', () => {
  it('legacy: process 1’s RETs consume process 0’s entries → rap-cross-context (advisory only)', async () => {
    const r = await run(litmus({ spec: 'legacy', script: CROSS }));
    expect(r.violationCounts['rap-cross-context']).toBe(4);
    expect(r.violations.map((v) => v.property)).toEqual(['rap-cross-context']);
    const v = r.violations[0]!;
    expect(v.consumer.process).toBe(1);
    expect(v.producer.process).toBe(0);
    expect(v.events.some((e) => /MOV CR3/.test(e))).toBe(true);
    expect(r.failing).toEqual([]);
    const { core, os } = statsOf(r);
    expect(os.contextSwitches).toBe(1);
    expect(core.clears).toEqual({});
    expect(core.stuffingCalls).toBe(0);
    expect(core.rap.mispredicted).toBeGreaterThanOrEqual(4);
  });

  it('eraps-amd: the MOV CR3 clears the RAP → no violation, one mov-cr3 clear, the RETs underflow', async () => {
    const r = await run(litmus({ spec: 'eraps-amd', script: CROSS }));
    expect(r.violations).toEqual([]);
    expect(Object.values(r.violationCounts).every((n) => n === 0)).toBe(true);
    const { core, os } = statsOf(r);
    expect(core.clears).toEqual({ 'mov-cr3': 1 });
    expect(os.contextSwitches).toBe(1);
    expect(core.rap.underflows).toBeGreaterThanOrEqual(4);
    expect(core.rap.mispredicted).toBe(0);
  });

  for (const spec of ['eraps-apm', 'eraps-cr3'] as const) {
    it(`${spec}: MOV CR3 clears too`, async () => {
      const r = await run(litmus({ spec, script: CROSS }));
      expect(r.violations).toEqual([]);
      expect(statsOf(r).core.clears).toEqual({ 'mov-cr3': 1 });
    });
  }

  it('the same process returning after its own CALLs is never judged', async () => {
    const r = await run(litmus({ spec: 'legacy', script: '[ { call: 4 }, { ret: 4 } ]' }));
    expect(r.violations).toEqual([]);
    expect(statsOf(r).core.rap.mispredicted).toBe(0);
  });
});

describe('LinuxOs: stuffing', () => {
  it('auto on legacy with a 64-entry RAP stuffs the 32 its CPUID implies → rap-promised-clear', async () => {
    const r = await run(
      litmus({
        spec: 'legacy',
        stuffing: 'auto',
        rapEntries: 64,
        callDepth: 48,
        script: '[ { call: 40 }, { switchTo: { process: 1 } }, { ret: 40 } ]',
      }),
    );
    expect(r.violations.map((v) => v.property)).toEqual(['rap-promised-clear']);
    expect(r.failing).toEqual(['rap-promised-clear']);
    const v = r.violations[0]!;
    expect(v.promise).toMatch(/32 CALLs/);
    expect(v.because).toMatch(/64/);
    expect(v.events).toHaveLength(3);
    expect(v.events[1]).toMatch(/stuffing/);
    const { core, os } = statsOf(r);
    expect(core.stuffingCalls).toBe(32);
    expect(os.stuffingCalls).toBe(32);
  });

  it('auto on legacy with a 32-entry RAP: the stuffing covers the RAP → no violation', async () => {
    const r = await run(
      litmus({
        spec: 'legacy',
        stuffing: 'auto',
        callDepth: 48,
        script: '[ { call: 40 }, { switchTo: { process: 1 } }, { ret: 40 } ]',
      }),
    );
    expect(r.violations).toEqual([]);
    expect(statsOf(r).core.stuffingCalls).toBe(32);
  });

  it('auto on eraps-amd does not stuff (CPUID shows ERAPS)', async () => {
    const r = await run(litmus({ spec: 'eraps-amd', stuffing: 'auto', script: CROSS }));
    expect(statsOf(r).core.stuffingCalls).toBe(0);
  });

  it('always on eraps-amd stuffs RapSize × 8 = 64', async () => {
    const r = await run(litmus({ spec: 'eraps-amd', stuffing: 'always', script: CROSS }));
    expect(statsOf(r).core.stuffingCalls).toBe(64);
    expect(statsOf(r).os.stuffingCalls).toBe(64);
    expect(r.violations).toEqual([]);
  });

  it('fills after the switch’s MOV CR3, as __switch_to_asm follows switch_mm_irqs_off: the RETs after it meet the fill', async () => {
    // eraps-amd: the MOV CR3 clears the RAP; a fill before it would be cleared with it, and
    // process 1 would underflow instead of returning into the 64 stuffed entries.
    const r = await run(litmus({ spec: 'eraps-amd', stuffing: 'always', script: CROSS }));
    const { core } = statsOf(r);
    expect(core.clears).toEqual({ 'mov-cr3': 1 });
    expect(core.rap.underflows).toBe(0);
    expect(core.rap.mispredicted).toBeGreaterThanOrEqual(4);
  });

  it('stuffRap: auto sizes by CPUID (32 on legacy, 64 on eraps), stuffRap: N stuffs N', async () => {
    const a = await run(litmus({ spec: 'legacy', script: '[ { stuffRap: auto } ]' }));
    expect(statsOf(a).core.stuffingCalls).toBe(32);
    const b = await run(litmus({ spec: 'eraps-cr3', script: '[ { stuffRap: auto } ]' }));
    expect(statsOf(b).core.stuffingCalls).toBe(64);
    const c = await run(litmus({ spec: 'legacy', script: '[ { stuffRap: 5 } ]' }));
    expect(statsOf(c).core.stuffingCalls).toBe(5);
  });

  it('the idle loop is two task switches: an OS that stuffs fills the RAP going in and coming out', async () => {
    const yaml = (spec: SpecVariant) =>
      [
        'name: idle',
        'seed: 1',
        'until: 500us',
        `hardware: { cores: 1, spec: ${spec} }`,
        'hostProcesses:',
        '  count: 1',
        '  stuffing: auto',
        '  contextSwitch: { every: 0 }',
        '  hlt: { every: 50us, for: 20us }',
        '',
      ].join('\n');
    const legacy = statsOf(await run(yaml('legacy')));
    expect(legacy.os.contextSwitches).toBe(0);
    expect(legacy.os.idleHalts).toBeGreaterThanOrEqual(8);
    // 32 CALLs (CPUID without ERAPS) at each switch; the last sleep may outlast the run.
    const fills = legacy.os.stuffingCalls / 32;
    expect([2 * legacy.os.idleHalts, 2 * legacy.os.idleHalts - 1]).toContain(fills);
    expect(legacy.core.stuffingCalls).toBe(legacy.os.stuffingCalls);
    // The process returns into the stuffed entries after each sleep.
    expect(legacy.core.rap.mispredicted).toBeGreaterThan(0);
    // CPUID shows ERAPS: no fill on either switch.
    const eraps = statsOf(await run(yaml('eraps-amd')));
    expect(eraps.os.idleHalts).toBe(legacy.os.idleHalts);
    expect(eraps.os.stuffingCalls).toBe(0);
    expect(eraps.core.rap.mispredicted).toBe(0);
  });
});

describe('LinuxOs: script instructions clear per spec (docs/domain.md §2)', () => {
  const cases: { op: string; cause: string; clearsOn: SpecVariant[] }[] = [
    { op: '{ cr4: { pge: toggle } }', cause: 'cr4-pge', clearsOn: ['eraps-apm', 'eraps-amd'] },
    { op: '{ wrmsr: { msr: SYSCFG } }', cause: 'wrmsr-msrlist', clearsOn: ['eraps-apm'] },
    { op: '{ invpcid: { type: 1 } }', cause: 'invpcid-1', clearsOn: ['eraps-apm', 'eraps-amd'] },
    { op: '{ invpcid: { type: 0, page: 3 } }', cause: 'invpcid-0', clearsOn: [] },
    { op: '{ cr0: { wp: clear } }', cause: 'cr0-wp', clearsOn: [] },
    { op: '{ wrmsr: { msr: EFER } }', cause: 'efer', clearsOn: [] },
    { op: '{ invlpg: { page: 3 } }', cause: 'invlpg', clearsOn: [] },
    {
      op: '{ movCr3: { process: 0, noflush: true } }',
      cause: 'mov-cr3',
      clearsOn: ['eraps-apm', 'eraps-amd', 'eraps-cr3'],
    },
  ];
  for (const k of cases) {
    for (const spec of SPECS) {
      const clears = k.clearsOn.includes(spec);
      it(`${k.op} ${clears ? 'clears' : 'does not clear'} on ${spec}`, async () => {
        // Process 0 calls, runs the instruction, and returns into its own entries. With a call depth
        // of 1 the generated workload afterwards underflows once (its initial frame) and then only
        // returns from its own CALLs.
        const r = await run(
          litmus({
            spec,
            count: 1,
            callDepth: 1,
            until: '5us',
            script: `[ { call: 3 }, ${k.op}, { ret: 3 } ]`,
          }),
        );
        const { core } = statsOf(r);
        expect(core.clears).toEqual(clears ? { [k.cause]: 1 } : {});
        // A clear makes the 3 RETs of the script underflow; otherwise they are predicted.
        if (clears) expect(core.rap.underflows).toBeGreaterThanOrEqual(3);
        else expect(core.rap.underflows).toBeLessThanOrEqual(1);
        expect(core.rap.mispredicted).toBe(0);
        expect(r.violations).toEqual([]);
      });
    }
  }

  it('WRMSR PRED_CMD and the ibpb op clear iff ibpbClearsRap', async () => {
    for (const op of ['{ ibpb: true }', '{ wrmsr: { msr: PRED_CMD } }']) {
      for (const ibpb of [true, false]) {
        const yaml = litmus({ spec: 'eraps-amd', count: 1, until: '5us', script: `[ ${op} ]` }).replace(
          '  spec: eraps-amd',
          `  spec: eraps-amd\n  ibpbClearsRap: ${ibpb}`,
        );
        const r = await run(yaml);
        expect(statsOf(r).core.clears, `${op} ${ibpb}`).toEqual(ibpb ? { ibpb: 1 } : {});
      }
    }
  });
});

/** A 4-core machine where one process has a thread on every core and shoots down every 20 µs. */
function shootdownScenario(
  o: { spec?: SpecVariant; sockets?: number; microarch?: string; workers?: number } = {},
): string {
  const topo = o.sockets ? [`  sockets: ${o.sockets}`, `  coresPerSocket: ${4 / o.sockets}`] : ['  cores: 4'];
  return [
    'name: shootdown',
    'seed: 1',
    'until: 200us',
    'hardware:',
    ...topo,
    `  spec: ${o.spec ?? 'eraps-amd'}`,
    ...(o.microarch ? [`  microarchClears: ${o.microarch}`] : []),
    'hostProcesses:',
    '  count: 2',
    '  threadsPerProcess: [4]',
    '  contextSwitch: { every: 30us }',
    '  shootdown: { every: 20us, pages: 2 }',
    '  workingSetPages: 4',
    '',
  ].join('\n');
}

describe('LinuxOs: TLB shootdowns', () => {
  it('IPIs every other core of the mm that runs it, waits for every ack, and leaves no stale translation', async () => {
    const r = await run(shootdownScenario());
    const ipi = r.topology.timing.ipiSameSocket;
    expect(ipi).toBe(1_000_000);
    let shootdowns = 0;
    for (let i = 0; i < 4; i++) {
      const { os, core } = statsOf(r, i);
      shootdowns += os.shootdowns;
      expect(os.flushIpisHandled, `core ${i}`).toBeGreaterThan(0);
      // The last shootdown may still be waiting for acknowledgements when the run ends.
      expect(os.shootdownLatencies.length).toBeGreaterThanOrEqual(os.shootdowns - 1);
      expect(os.shootdownLatencies.length).toBeLessThanOrEqual(os.shootdowns);
      for (const l of os.shootdownLatencies) {
        expect(l.targets).toBe(3);
        expect(l.crossSocket).toBe(false);
        // An IPI out and an acknowledgement back, plus the work on both sides.
        expect(l.latency).toBeGreaterThan(2 * ipi);
      }
      expect(core.tlb.staleHits).toBe(0);
      expect(os.pageAccesses).toBeGreaterThan(0);
    }
    expect(shootdowns).toBeGreaterThan(0);
    expect(r.violationCounts['tlb-stale']).toBe(0);
    // Every target of the mask either took the flush IPI or was left out (it ran the other
    // process); the last shootdowns' answers may still be on their way when the run ends.
    const handled = [0, 1, 2, 3].reduce((a, i) => a + statsOf(r, i).os.flushIpisHandled, 0);
    const otherMm = [0, 1, 2, 3].reduce((a, i) => a + statsOf(r, i).os.otherMmSkips, 0);
    const sent = [0, 1, 2, 3].reduce(
      (a, i) => a + statsOf(r, i).os.shootdownLatencies.reduce((b, l) => b + l.targets, 0),
      0,
    );
    expect(handled + otherMm).toBeGreaterThanOrEqual(sent);
    expect(otherMm).toBeGreaterThan(0);
  });

  it('leaves out a core that runs another process (should_flush_tlb: loaded_mm), which flushes the address space when it switches back', async () => {
    // Process 0 on every core, process 1 beside it on cores 0 and 1, switching with NOFLUSH CR3
    // writes: core 0 or 1 running process 1 keeps process 0's translations under PCID 1 while
    // process 0's threads shoot down. Skipped, it must flush PCID 1 when it switches back (its
    // tlb_gen moved), or it would use them.
    const yaml = [
      'name: other-mm',
      'seed: 3',
      'until: 1ms',
      'hardware: { cores: 4, spec: eraps-amd }',
      'hostProcesses:',
      '  count: 2',
      '  threadsPerProcess: [4, 2]',
      '  contextSwitch: { every: 7us, using: mov-cr3-noflush }',
      '  shootdown: { every: 5us, pages: 1 }',
      '  workingSetPages: 4',
      '',
    ].join('\n');
    const r = await run(yaml);
    const os = [0, 1, 2, 3].map((i) => statsOf(r, i).os);
    const sum = (f: (s: LinuxOsStats) => number) => os.reduce((n, s) => n + f(s), 0);
    const sent = sum((s) => s.shootdownLatencies.reduce((b, l) => b + l.targets, 0));
    expect(sum((s) => s.otherMmSkips)).toBeGreaterThan(sent / 10);
    expect(sum((s) => s.flushIpisHandled)).toBeLessThan(sent);
    expect(sum((s) => s.flushIpisHandled + s.otherMmSkips)).toBeGreaterThanOrEqual(sent);
    // Each completed shootdown knows how many of its targets it interrupted: the rest skipped.
    const interrupted = sum((s) => s.shootdownLatencies.reduce((b, l) => b + l.interrupted, 0));
    expect(interrupted).toBeLessThanOrEqual(sum((s) => s.flushIpisHandled));
    expect(interrupted + sum((s) => s.otherMmSkips)).toBeGreaterThanOrEqual(sent);
    expect(interrupted).toBeLessThan(sent);
    expect(sum((s) => s.otherMmFlushes)).toBeGreaterThan(0);
    expect(sum((s) => s.lazySkips)).toBe(0);
    for (let i = 0; i < 4; i++) expect(statsOf(r, i).core.tlb.staleHits, `core ${i}`).toBe(0);
    expect(r.violationCounts['tlb-stale']).toBe(0);
    expect(r.violations).toEqual([]);
  });

  it('across two sockets, every shootdown is cross-socket and takes longer than two cross-socket IPIs', async () => {
    const r = await run(shootdownScenario({ sockets: 2 }));
    const ipi = r.topology.timing.ipiCrossSocket;
    let n = 0;
    for (let i = 0; i < 4; i++) {
      for (const l of statsOf(r, i).os.shootdownLatencies) {
        n++;
        expect(l.crossSocket).toBe(true);
        expect(l.latency).toBeGreaterThan(2 * ipi);
      }
    }
    expect(n).toBeGreaterThan(0);
    expect(r.violationCounts['tlb-stale']).toBe(0);
  });

  it('microarchClears 1: flush-IPI delivery clears the RAP on the targets (never promised, so no belief)', async () => {
    const r = await run(shootdownScenario({ spec: 'eraps-cr3', microarch: '1' }));
    for (let i = 0; i < 4; i++) {
      const { core, os } = statsOf(r, i);
      expect(core.clears['microarch:interrupt']).toBe(os.flushIpisHandled);
    }
    const none = await run(shootdownScenario({ spec: 'eraps-cr3' }));
    for (let i = 0; i < 4; i++) expect(statsOf(none, i).core.clears['microarch:interrupt']).toBeUndefined();
  });

  it('a core idle in lazy TLB mode is skipped: it sleeps on, and flushes each skipped address space before it uses it', async () => {
    // Cores sleep 40 of every 50 µs (the idle loop, lazy TLB mode) and switch between two
    // processes with NOFLUSH CR3 writes: a skipped shootdown may be of the process a core
    // switches to later, which switch_mm_irqs_off must then flush (its tlb_gen moved).
    const yaml = [
      'name: lazy',
      'seed: 1',
      'until: 1ms',
      'hardware: { cores: 4, spec: eraps-amd }',
      'hostProcesses:',
      '  count: 2',
      '  threadsPerProcess: [4, 4]',
      '  contextSwitch: { every: 7us, using: mov-cr3-noflush }',
      '  shootdown: { every: 5us, pages: 1 }',
      '  hlt: { every: 50us, for: 40us }',
      '  workingSetPages: 4',
      '',
    ].join('\n');
    const r = await run(yaml);
    const os = [0, 1, 2, 3].map((i) => statsOf(r, i).os);
    const skipped = os.reduce((n, s) => n + s.lazySkips, 0);
    const otherMm = os.reduce((n, s) => n + s.otherMmSkips, 0);
    const handled = os.reduce((n, s) => n + s.flushIpisHandled, 0);
    const sent = os.reduce((n, s) => n + s.shootdownLatencies.reduce((b, l) => b + l.targets, 0), 0);
    expect(skipped).toBeGreaterThan(handled);
    expect(handled + skipped + otherMm).toBeGreaterThanOrEqual(sent);
    expect(os.reduce((n, s) => n + s.lazyFlushes, 0)).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) expect(statsOf(r, i).core.tlb.staleHits, `core ${i}`).toBe(0);
    expect(r.violationCounts['tlb-stale']).toBe(0);
    // A sleeper answers at once: no initiator waits out a 40 µs sleep.
    const worst = Math.max(...os.flatMap((s) => s.shootdownLatencies.map((l) => l.latency)));
    expect(worst).toBeLessThan(20_000_000);
  });

  it('gives the same trace digest, violations and statistics for one or two partitions', async () => {
    const a = await run(shootdownScenario({ spec: 'legacy' }), 1);
    const b = await run(shootdownScenario({ spec: 'legacy' }), 2);
    expect(b.topology.partitions).toBe(2);
    expect(b.traceDigest).toBe(a.traceDigest);
    expect(b.violations).toEqual(a.violations);
    expect(b.actors.map((x) => x.stats)).toEqual(a.actors.map((x) => x.stats));
  });
});

describe('LinuxOs: process identities', () => {
  // Regression: a RAP entry's context holds a 12-bit process number (4094 = STUFF_PROCESS and
  // 4095 = KERNEL_PROCESS reserved) while the loader used to accept 65 536 host processes:
  // process 4095 was reported as the kernel, and process 4096 on core 0 encoded as process 0 of
  // view 1 (so its beliefs were looked up on the wrong CPU). The loader now caps the count.
  it('the loader rejects more host processes than a context can name', () => {
    for (const count of [LIMITS.processes + 1, 4095, 4096, 4097, 65_536]) {
      const yaml = litmus({ spec: 'legacy', count, script: '[ { call: 1 } ]' });
      expect(() => parseScenarioText(yaml, 'test.yaml'), String(count)).toThrow(ScenarioError);
      expect(() => parseScenarioText(yaml, 'test.yaml'), String(count)).toThrow(/hostProcesses\.count/);
    }
  });

  it('names the highest accepted process correctly in a cross-context finding', async () => {
    // The cap must stay below the reserved STUFF (4094) and KERNEL (4095) process numbers.
    expect(LIMITS.processes).toBeLessThanOrEqual(4094);
    const max = LIMITS.processes - 1;
    const r = await run(
      litmus({
        spec: 'legacy',
        count: max + 1,
        until: '5us',
        script: `[ { call: 4 }, { switchTo: { process: ${max} } }, { ret: 4 } ]`,
      }),
    );
    const v = r.violations.find((x) => x.property === 'rap-cross-context');
    expect(v?.consumer.process).toBe(max);
    expect(v?.producer.process).toBe(0);
  });
});

describe('LinuxOs: scripts naming processes the core does not run', () => {
  /** 'rejected' (a scenario error, exit 2), 'ran', or the unexpected error itself. */
  async function outcome(yaml: string): Promise<unknown> {
    let scenario: ReturnType<typeof parseScenarioText>;
    try {
      scenario = parseScenarioText(yaml, 'test.yaml');
    } catch (e) {
      return e instanceof ScenarioError ? 'rejected' : e;
    }
    try {
      await runSimulation(scenario, { workers: 1, inProcess: true });
    } catch (e) {
      return e instanceof Error ? `${e.constructor.name}: ${e.message.split('\n')[0]}` : e;
    }
    return 'ran';
  }

  it('a process index beyond the count is a scenario error', async () => {
    expect(await outcome(litmus({ spec: 'legacy', script: '[ { switchTo: { process: 5 } } ]' }))).toBe(
      'rejected',
    );
  });

  // Regression: a script may switch (switchTo or movCr3) to a process that exists but has no
  // thread on that core (threadsPerProcess); call()/ret() used `this.stacks.get(this.current)!`
  // and died with a TypeError (internal error, exit 3) instead of a scenario error or a run.
  it('switchTo a process without a thread on the core is rejected or runs, not an internal error', async () => {
    const yaml = [
      'name: t',
      'until: 5us',
      'hardware: { cores: 2, spec: legacy }',
      'hostProcesses:',
      '  count: 2',
      '  threadsPerProcess: [2, 1]',
      '  contextSwitch: { every: 0 }',
      '  script:',
      '    1: [ { call: 2 }, { switchTo: { process: 1 } }, { ret: 2 } ]',
      '',
    ].join('\n');
    expect(['rejected', 'ran']).toContain(await outcome(yaml));
    expect(['rejected', 'ran']).toContain(
      await outcome(yaml.replace('switchTo: { process: 1 }', 'movCr3: { process: 1 }')),
    );
  });

  // Regression: with `hostProcesses.count: 0` the core ran no process (current = -1), yet a
  // script `[ { call: 2 } ]` was accepted and crashed in call() on stacks.get(-1).
  it('a CALL in a script on a core without processes is rejected or runs, not an internal error', async () => {
    const yaml = [
      'name: t',
      'until: 5us',
      'hardware: { cores: 1, spec: legacy }',
      'hostProcesses:',
      '  count: 0',
      '  script:',
      '    0: [ { call: 2 }, { ret: 2 } ]',
      '',
    ].join('\n');
    expect(['rejected', 'ran']).toContain(await outcome(yaml));
  });
});

describe('LinuxOs: generated workload', () => {
  function generated(spec: SpecVariant, lines: string[]): string {
    return [
      'name: gen',
      'seed: 2',
      'until: 100us',
      'hardware:',
      '  cores: 1',
      `  spec: ${spec}`,
      'hostProcesses:',
      '  count: 2',
      ...lines.map((l) => `  ${l}`),
      '',
    ].join('\n');
  }

  it('legacy, stuffing auto: every context switch stuffs 32 CALLs and no entry crosses processes', async () => {
    const r = await run(generated('legacy', ['stuffing: auto', 'contextSwitch: { every: 10us }']));
    const { core, os } = statsOf(r);
    expect(os.contextSwitches).toBeGreaterThan(3);
    expect(core.stuffingCalls).toBe(32 * os.contextSwitches);
    expect(r.violations).toEqual([]);
  });

  it('legacy, stuffing never: generated switches leave cross-context uses', async () => {
    const r = await run(generated('legacy', ['stuffing: never', 'contextSwitch: { every: 10us }']));
    expect(statsOf(r).os.contextSwitches).toBeGreaterThan(3);
    expect(r.violationCounts['rap-cross-context']).toBeGreaterThan(0);
    expect(r.failing).toEqual([]);
  });

  for (const spec of ['eraps-apm', 'eraps-amd', 'eraps-cr3'] as const) {
    for (const using of ['mov-cr3', 'mov-cr3-noflush', 'invpcid-single']) {
      it(`${spec}, switches using ${using}, no stuffing: the switch's MOV CR3 clears, nothing is found`, async () => {
        const r = await run(
          generated(spec, ['stuffing: auto', `contextSwitch: { every: 10us, using: ${using} }`]),
        );
        const { core, os } = statsOf(r);
        expect(core.stuffingCalls).toBe(0);
        expect(core.clears['mov-cr3']).toBe(os.contextSwitches);
        if (using === 'invpcid-single')
          expect(core.clears['invpcid-1'] ?? 0).toBe(spec === 'eraps-cr3' ? 0 : os.contextSwitches);
        expect(r.violations).toEqual([]);
      });
    }
  }

  it('global flush by CR4.PGE toggle clears twice per flush on eraps-amd, never on eraps-cr3; INVPCID all clears on eraps-amd', async () => {
    const amd = statsOf(
      await run(
        generated('eraps-amd', [
          'contextSwitch: { every: 0 }',
          'globalFlush: { every: 10us, using: cr4-pge }',
        ]),
      ),
    ).core;
    expect(amd.clears['cr4-pge']).toBeGreaterThan(0);
    expect(amd.clears['cr4-pge']! % 2).toBe(0);
    const cr3 = statsOf(
      await run(
        generated('eraps-cr3', [
          'contextSwitch: { every: 0 }',
          'globalFlush: { every: 10us, using: cr4-pge }',
        ]),
      ),
    ).core;
    expect(cr3.clears).toEqual({});
    const inv = statsOf(
      await run(
        generated('eraps-amd', [
          'contextSwitch: { every: 0 }',
          'globalFlush: { every: 10us, using: invpcid-all }',
        ]),
      ),
    ).core;
    expect(Object.keys(inv.clears)).toEqual(['invpcid-2']);
    expect(inv.tlb.flushes).toBeGreaterThan(0);
  });

  it('local flush by INVLPG never clears; by CR3 reload clears on ERAPS only', async () => {
    for (const spec of SPECS) {
      const invlpg = statsOf(
        await run(
          generated(spec, ['contextSwitch: { every: 0 }', 'localFlush: { every: 10us, using: invlpg }']),
        ),
      ).core;
      expect(invlpg.clears, spec).toEqual({});
      expect(invlpg.tlb.flushes).toBeGreaterThan(0);
      const reload = statsOf(
        await run(
          generated(spec, ['contextSwitch: { every: 0 }', 'localFlush: { every: 10us, using: cr3-reload }']),
        ),
      ).core;
      if (spec === 'legacy') expect(reload.clears).toEqual({});
      else expect(reload.clears['mov-cr3']).toBeGreaterThan(0);
    }
  });

  it('is deterministic: the same scenario twice gives the same digest, violations and statistics', async () => {
    const yaml = generated('legacy', [
      'stuffing: never',
      'contextSwitch: { every: 7us }',
      'globalFlush: { every: 13us }',
    ]);
    const a = await run(yaml);
    const b = await run(yaml);
    expect(b.traceDigest).toBe(a.traceDigest);
    expect(b.violations).toEqual(a.violations);
    expect(b.actors.map((x) => x.stats)).toEqual(a.actors.map((x) => x.stats));
  });
});
