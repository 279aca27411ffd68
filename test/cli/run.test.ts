import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rapsim, rapsimJson, shellWords, tempDir, writeTempScenario } from '../helpers/cli.js';

const LITMUS = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
const DEFAULT = 'scenarios/default.yaml';

interface Party {
  world: string;
  vm: string | null;
  vcpu: number | null;
  level: number;
  process: number | null;
}

interface Violation {
  property: string;
  atNs: number;
  pcpu: number;
  consumer: Party;
  producer: Party & { atNs: number };
  promise: string;
  because: string;
  events: string[];
}

interface Report {
  rapsim: string;
  scenario: string;
  seed: number;
  workers: number;
  simulatedNs: number;
  events: number;
  wallMs: number;
  traceDigest: string;
  violations: Violation[];
  metrics: {
    rap: {
      returns: number;
      predicted: number;
      mispredicted: number;
      underflows: number;
      clears: Record<string, number>;
      stuffingCalls: number;
    };
    exits: Record<string, number>;
    worldSwitches: number;
    shootdowns: { count: number; latencyNs: { p50: number; p90: number; p99: number; max: number } };
  };
}

const PROPERTIES = ['rap-host-guest', 'rap-promised-clear', 'rap-nested', 'rap-cross-context', 'tlb-stale'];

const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;

function expectCountMap(map: unknown): void {
  expect(map).toBeTypeOf('object');
  expect(map).not.toBeNull();
  for (const [key, value] of Object.entries(map as object)) {
    expect(key).not.toBe('');
    expect(isCount(value), `${key}: ${String(value)}`).toBe(true);
  }
}

function expectParty(p: Party): void {
  expect(['host', 'guest']).toContain(p.world);
  expect(isCount(p.level)).toBe(true);
  if (p.world === 'host') {
    expect(p.vm).toBeNull();
    expect(p.vcpu).toBeNull();
  } else {
    expect(p.vm).toBeTypeOf('string');
    expect(isCount(p.vcpu)).toBe(true);
  }
}

/** The fields interface.md names, with their types and the relations between them. */
function expectInterfaceReport(r: Report): void {
  expect(r.rapsim).toMatch(/^\d+\.\d+\.\d+/);
  expect(r.scenario).toBeTypeOf('string');
  expect(r.scenario).not.toBe('');
  for (const k of ['seed', 'workers', 'simulatedNs', 'events', 'wallMs'] as const) {
    expect(isCount(r[k]), `${k}: ${String(r[k])}`).toBe(true);
  }
  expect(r.workers).toBeGreaterThanOrEqual(1);
  expect(r.traceDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

  expect(Array.isArray(r.violations)).toBe(true);
  for (const v of r.violations) {
    expect(PROPERTIES).toContain(v.property);
    expect(isCount(v.atNs)).toBe(true);
    expect(v.atNs).toBeLessThanOrEqual(r.simulatedNs);
    expect(isCount(v.pcpu)).toBe(true);
    expectParty(v.consumer);
    expectParty(v.producer);
    expect(isCount(v.producer.atNs)).toBe(true);
    expect(v.producer.atNs).toBeLessThanOrEqual(v.atNs);
    expect(v.promise).toBeTypeOf('string');
    expect(v.because).toBeTypeOf('string');
    expect(v.because).not.toBe('');
    expect(Array.isArray(v.events)).toBe(true);
    expect(v.events.length).toBeGreaterThan(0);
    for (const e of v.events) expect(e).toBeTypeOf('string');
  }

  const { rap, exits, worldSwitches, shootdowns } = r.metrics;
  for (const k of ['returns', 'predicted', 'mispredicted', 'underflows', 'stuffingCalls'] as const) {
    expect(isCount(rap[k]), `metrics.rap.${k}: ${String(rap[k])}`).toBe(true);
  }
  // Every RET is predicted, mispredicted or underflows.
  expect(rap.predicted + rap.mispredicted + rap.underflows).toBe(rap.returns);
  expectCountMap(rap.clears);
  expectCountMap(exits);
  expect(isCount(worldSwitches)).toBe(true);
  expect(isCount(shootdowns.count)).toBe(true);
  const { p50, p90, p99, max } = shootdowns.latencyNs;
  for (const p of [p50, p90, p99, max]) expect(isCount(p)).toBe(true);
  expect(p50).toBeLessThanOrEqual(p90);
  expect(p90).toBeLessThanOrEqual(p99);
  expect(p99).toBeLessThanOrEqual(max);
}

function withoutWallMs(report: Record<string, unknown>): Record<string, unknown> {
  const { wallMs: _wallMs, ...rest } = report;
  return rest;
}

describe(`rapsim run ${LITMUS}`, () => {
  it('exits 0 (expect allows rap-promised-clear) and explains the violation in its summary', async () => {
    const [human, json] = await Promise.all([rapsim(['run', LITMUS]), rapsimJson(['run', LITMUS])]);
    expect(human.code, human.stderr).toBe(0);
    const report = json.report as unknown as Report;
    const v = report.violations.find((x) => x.property === 'rap-promised-clear');
    expect(v, 'the --json report lists rap-promised-clear').toBeDefined();

    const out = human.stdout;
    expect(out).toContain('rap-promised-clear');
    expect(out).toMatch(/promise/i);
    expect(out).toContain(v!.promise);
    expect(out).toContain('because');
    expect(out).toContain(v!.because);
    expect(out).toMatch(/^replay: rapsim run scenarios\/bare-metal\/litmus-stuffing-too-short\.yaml( .*)?$/m);
    expect(out).not.toMatch(/\n\s+at /);
  });

  it('counts in its summary the shootdown targets skipped while idle in lazy TLB mode (bare metal)', async () => {
    const file = writeTempScenario(
      'lazy.yaml',
      [
        'name: lazy',
        'seed: 1',
        'until: 300us',
        'hardware: { cores: 2, spec: eraps-amd }',
        'hostProcesses:',
        '  count: 1',
        '  contextSwitch: { every: 0 }',
        '  shootdown: { every: 5us, pages: 1 }',
        '  hlt: { every: 50us, for: 40us }',
        '',
      ].join('\n'),
    );
    const [human, json] = await Promise.all([rapsim(['run', file]), rapsimJson(['run', file])]);
    expect(human.code, human.stderr).toBe(0);
    const skipped = (json.report as { metrics: { shootdowns: { lazySkippedTargets: number } } }).metrics
      .shootdowns.lazySkippedTargets;
    expect(skipped).toBeGreaterThan(0);
    expect(human.stdout).toContain(
      `targets skipped (not interrupted): running another address space 0, idle in lazy TLB mode ${skipped}`,
    );
  });

  it('exits 1 with --set expect.violations=[]', async () => {
    const r = await rapsim(['run', LITMUS, '--set', 'expect.violations=[]']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('rap-promised-clear');
  });

  it("the summary's replay line reproduces the run exactly, --set included", async () => {
    const sets = ['--set', 'expect.violations=[]'];
    const [human, original] = await Promise.all([
      rapsim(['run', LITMUS, '--seed', '3', ...sets]),
      rapsimJson(['run', LITMUS, '--seed', '3', ...sets]),
    ]);
    const line = /^replay: (rapsim run .*)$/m.exec(human.stdout)?.[1];
    expect(line, human.stdout).toBeDefined();
    const words = shellWords(line!);
    expect(words.slice(0, 3)).toEqual(['rapsim', 'run', LITMUS]);
    expect(words).toContain('--seed');
    expect(words).toContain('expect.violations=[]');
    const replayed = await rapsimJson(words.slice(1));
    expect(replayed.code).toBe(original.code);
    expect(replayed.code).toBe(1);
    expect(withoutWallMs(replayed.report)).toEqual(withoutWallMs(original.report));
  });

  it('--json prints exactly one JSON document with the fields of interface.md', async () => {
    const r = await rapsim(['run', LITMUS, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimStart().startsWith('{')).toBe(true);
    expect(r.stdout.trimEnd().endsWith('}')).toBe(true);
    const report = JSON.parse(r.stdout) as Report;
    expectInterfaceReport(report);
    expect(report.scenario).toBe('litmus-stuffing-too-short');
    expect(report.seed).toBe(1);
    expect(report.simulatedNs).toBe(20_000);
    expect(report.violations.length).toBeGreaterThan(0);
    const v = report.violations.find((x) => x.property === 'rap-promised-clear')!;
    expect(v).toBeDefined();
    expect(v.consumer).toMatchObject({ world: 'host', process: 1 });
    expect(v.producer).toMatchObject({ world: 'host', process: 0 });
    expect(v.pcpu).toBe(0);
    expect(report.metrics.rap.stuffingCalls).toBeGreaterThan(0);
  });

  it('--json reports the --workers it was given', async () => {
    const { code, report } = await rapsimJson(['run', LITMUS, '--workers', '2']);
    expect(code).toBe(0);
    expect(report.workers).toBe(2);
  });

  it('--out DIR writes DIR/report.json equal to the --json output apart from wallMs', async () => {
    const dir = join(tempDir(), 'out');
    const [written, json] = await Promise.all([
      rapsim(['run', LITMUS, '--out', dir, '--quiet']),
      rapsimJson(['run', LITMUS]),
    ]);
    expect(written.code, written.stderr).toBe(0);
    const file = join(dir, 'report.json');
    expect(existsSync(file)).toBe(true);
    const onDisk = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(onDisk.wallMs).toBeTypeOf('number');
    expect(withoutWallMs(onDisk)).toEqual(withoutWallMs(json.report));
  });

  it('--quiet prints nothing on stdout, whether or not the expect is met', async () => {
    const [met, failed] = await Promise.all([
      rapsim(['run', LITMUS, '--quiet']),
      rapsim(['run', LITMUS, '--quiet', '--set', 'expect.violations=[]']),
    ]);
    expect(met.code).toBe(0);
    expect(met.stdout).toBe('');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
  });
});

describe(`rapsim run ${DEFAULT}`, () => {
  it('--seed 2 changes the traceDigest vs seed 1', async () => {
    const [one, two] = await Promise.all([
      rapsimJson(['run', DEFAULT, '--seed', '1']),
      rapsimJson(['run', DEFAULT, '--seed', '2']),
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expectInterfaceReport(one.report as unknown as Report);
    expectInterfaceReport(two.report as unknown as Report);
    expect(one.report.seed).toBe(1);
    expect(two.report.seed).toBe(2);
    expect(two.report.traceDigest).not.toBe(one.report.traceDigest);
  });
});

describe('rapsim run on a scenario that carries matrix: and seeds:', () => {
  // BUG (src/cli/runCommand.ts): interface.md says "A scenario may itself carry `matrix:` and `seeds:`;
  // `run` on such a scenario behaves like `sweep`". The schema accepts both keys, but runCommand
  // ignores them and silently runs ONE plain simulation (seed 1, hardware.spec left at its default
  // eraps-amd, i.e. neither matrix value), exiting 0 with an ordinary single report. VMs, which are
  // not modelled yet either, are refused with exit 2 (checkModelled); matrix:/seeds: should be too
  // until sweep exists, rather than reporting a run the user did not ask for.
  it('sweeps the variants (or refuses with exit 2), never silently runs one plain simulation', async () => {
    const file = writeTempScenario(
      'matrix.yaml',
      'name: m\nuntil: 10us\nhardware: { cores: 2 }\nhostProcesses: { count: 1 }\n' +
        'matrix:\n  hardware.spec: [legacy, eraps-amd]\nseeds: [1, 2]\n',
    );
    const r = await rapsim(['run', file, '--json']);
    if (r.code === 2) {
      expect(r.stderr).toMatch(/matrix|seeds/);
      return;
    }
    // Otherwise, the sweep document of interface.md: one variant per matrix value, both seeds each.
    const doc = JSON.parse(r.stdout) as { variants?: { set: Record<string, unknown>; seeds: number[] }[] };
    expect(doc.variants).toHaveLength(2);
    for (const v of doc.variants!) expect(v.seeds).toEqual([1, 2]);
  });
});

describe('rapsim run: internal errors', () => {
  it('stops a run that exceeds its event cap with exit 3, naming the actor and time, on worker threads', async () => {
    const r = await rapsim(['run', 'scenarios/default.yaml', '--workers', '2', '--set', 'maxEvents=500']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/internal error in actor pcpu:\d{4}/);
    expect(r.stderr).toMatch(/event cap of 500/);
    expect(r.stderr).toMatch(/at \d[\d.]*(ps|ns|us|ms)/);
    expect(r.stderr).toMatch(/replay: rapsim run scenarios\/default.yaml --seed 1 --set maxEvents=500/);
  });
});

describe('rapsim run --latency', () => {
  it('prints the timing table in force, with the scenario overrides, its sources, and does not run', async () => {
    const r = await rapsim([
      'run',
      'scenarios/default.yaml',
      '--latency',
      '--set',
      'hardware.latency.ipiCrossSocket=3us',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ipiCrossSocket\s+3us\s+2700 ns\s+S2\s+LATR/m);
    expect(r.stdout).toMatch(/^vmrunVmexitRoundTrip\s+450ns\s+1350 cycles\s+S\s+LKML 20201216151203/m);
    expect(r.stdout).not.toMatch(/violations/);
    const j = await rapsim(['run', 'scenarios/default.yaml', '--latency', '--json']);
    const rows = JSON.parse(j.stdout) as { key: string; ps: number; source: string }[];
    expect(rows.find((x) => x.key === 'ipiSameSocket')).toMatchObject({ ps: 1_000_000 });
    expect(rows.every((x) => x.source.length > 0)).toBe(true);
    // Figures no model reads are marked, in the text and in the JSON.
    expect(r.stdout).toMatch(/^rangeFlush\s.*\[reference only: no path flushes a range/m);
    expect(rows.find((x) => x.key === 'rangeFlush')).toHaveProperty('reference');
    expect(rows.find((x) => x.key === 'pleWindow')).not.toHaveProperty('reference');
    expect(rows.find((x) => x.key === 'ipiSameSocket')).not.toHaveProperty('reference');
  });

  it('refuses to override a reference-only figure (exit 2), since it would change nothing', async () => {
    const r = await rapsim(['run', 'scenarios/default.yaml', '--set', 'hardware.latency.rangeFlush=500']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /hardware\.latency\.rangeFlush: not an input of the model: no path flushes a range/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
