import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../../src/scenario/errors.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { parseOverride } from '../../src/scenario/overrides.js';
import { formatSet, type PlanInput, parseVary, planSweep, runId, runIsSweep } from '../../src/sweep/plan.js';
import { buildTopology } from '../../src/workers/compose.js';
import { repoRoot } from '../helpers/cli.js';

const TEXT = `name: p
seed: 7
until: 10us
hardware: { cores: 2, spec: legacy }
hostProcesses: { count: 2 }
matrix:
  hardware.spec: [legacy, eraps-amd]
  hostProcesses.stuffing: [auto, never]
`;

function plan(over: Partial<PlanInput> = {}) {
  return planSweep({
    rapsim: '9.9.9',
    file: 'p.yaml',
    text: TEXT,
    sets: [],
    vary: [],
    replayOf: ({ seed, sets }) =>
      ['rapsim run p.yaml --seed', seed, ...sets.map((s) => `--set ${s}`)].join(' '),
    ...over,
  });
}

function scenarioErrorOf(f: () => unknown): ScenarioError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    expect((e as Error).message).not.toMatch(/\n/);
    return e as ScenarioError;
  }
  throw new Error('expected a ScenarioError');
}

describe('--vary', () => {
  it('reads values as YAML scalars, like --set', () => {
    expect(parseVary('hardware.spec=legacy,eraps-amd')).toEqual({
      key: 'hardware.spec',
      values: ['legacy', 'eraps-amd'],
    });
    expect(parseVary('hardware.rapEntries=32, 64').values).toEqual([32, 64]);
    expect(parseVary('hardware.autoIbrs=true,false').values).toEqual([true, false]);
  });

  it('refuses a missing key, an empty value or a non-scalar, naming --vary', () => {
    for (const bad of ['hardware.spec', 'hardware.spec=', 'hardware.spec=a,,b', '=a,b', 'x=[1]']) {
      expect(scenarioErrorOf(() => parseVary(bad)).message).toMatch(/^--(vary|set)/);
    }
  });

  it('refuses a value twice, and a key varied twice: either would run and count variants twice', () => {
    expect(scenarioErrorOf(() => parseVary('hardware.spec=legacy,eraps-amd,legacy')).message).toMatch(
      /^--vary: expected each value once \(found "legacy" twice\)/,
    );
    // 32 and 32.0 are one number.
    expect(scenarioErrorOf(() => parseVary('hardware.rapEntries=32,32.0')).message).toMatch(/found 32 twice/);
    const twice = scenarioErrorOf(() =>
      plan({ vary: [parseVary('hardware.spec=legacy'), parseVary('hardware.spec=eraps-amd')] }),
    );
    expect(twice.file).toBe('--vary');
    expect(twice.path).toBe('hardware.spec');
    expect(twice.message).toMatch(/one --vary per key, with all its values/);
    // --set and --vary of one key: the --set would be overridden by every variant.
    const both = scenarioErrorOf(() =>
      plan({ sets: ['hardware.spec=legacy'], vary: [parseVary('hardware.spec=eraps-amd,eraps-cr3')] }),
    );
    expect(both.path).toBe('hardware.spec');
    expect(both.message).toMatch(/a key that no --set pins.*found --set hardware\.spec=legacy/);
    // A matrix list with a value twice is refused by the schema, at its line.
    const dup = scenarioErrorOf(() =>
      plan({ text: TEXT.replace('[legacy, eraps-amd]', '[legacy, eraps-amd, legacy]') }),
    );
    expect(dup.path).toBe('matrix.hardware.spec');
    expect(dup.message).toMatch(/expected each value once \(found "legacy" twice\)/);
  });

  it('refuses what every run would override: a varied or --set seed, a varied until beside --until', () => {
    // Each run's seed is the sweep's: a varied seed gave identical variants.
    const seed = scenarioErrorOf(() => plan({ vary: [parseVary('seed=1,2')] }));
    expect([seed.file, seed.path]).toEqual(['--vary', 'seed']);
    const inMatrix = scenarioErrorOf(() => plan({ text: `${TEXT}  seed: [1, 2]\n` }));
    expect(inMatrix.path).toBe('matrix.seed');
    const set = scenarioErrorOf(() => plan({ sets: ['seed=5'] }));
    expect(set.message).toMatch(/^--set: seed: expected the seeds of a sweep as `sweep --seeds A\.\.B`/);
    const until = scenarioErrorOf(() =>
      plan({ vary: [parseVary('until=100us,300us')], until: { text: '20us', ps: 20_000_000 } }),
    );
    expect(until.message).toMatch(/either a varied until or --until/);
    const untilSet = scenarioErrorOf(() =>
      plan({ sets: ['until=30us'], until: { text: '20us', ps: 20_000_000 } }),
    );
    expect(untilSet.message).toMatch(/either --set until or --until/);
    // Each alone is fine.
    expect(plan({ vary: [parseVary('until=10us,20us')] }).runs).toHaveLength(8);
  });

  it('formatSet gives a --set that reads back exactly the value', () => {
    const scalar = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constantFrom('8', 'true', 'null', '~', '3us', 'a: b', '- x', '#c', ' lead', 'x,y', '[1]', '{a: 1}'),
    );
    fc.assert(
      fc.property(scalar, (v) => {
        expect(parseOverride(formatSet('name', v)).value).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });
});

describe('planSweep', () => {
  it('runs the cross product (first key slowest) × seeds, variant-major', () => {
    const p = plan({ seeds: [1, 2] });
    expect(p.variants).toEqual([
      { 'hardware.spec': 'legacy', 'hostProcesses.stuffing': 'auto' },
      { 'hardware.spec': 'legacy', 'hostProcesses.stuffing': 'never' },
      { 'hardware.spec': 'eraps-amd', 'hostProcesses.stuffing': 'auto' },
      { 'hardware.spec': 'eraps-amd', 'hostProcesses.stuffing': 'never' },
    ]);
    expect(p.runs.map((r) => [r.variant, r.seed])).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
      [3, 1],
      [3, 2],
    ]);
    expect(p.runs.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(p.runs[3]!.sets).toEqual(['hardware.spec=legacy', 'hostProcesses.stuffing=never']);
    expect(p.runs[3]!.replay).toBe(
      'rapsim run p.yaml --seed 2 --set hardware.spec=legacy --set hostProcesses.stuffing=never',
    );
    expect(p.scenario).toBe('p');
  });

  it('takes seeds from --seeds, else the scenario’s seeds:, else its seed', () => {
    expect(plan({ seeds: [4] }).seeds).toEqual([4]);
    expect(plan().seeds).toEqual([7]);
    expect(plan({ text: `${TEXT}seeds: 2..4\n` }).seeds).toEqual([2, 3, 4]);
  });

  it('a --set of a matrix key pins it; --vary replaces a matrix key in place or adds one', () => {
    const pinned = plan({ sets: ['hardware.spec=eraps-cr3'] });
    expect(pinned.vary).toEqual({ 'hostProcesses.stuffing': ['auto', 'never'] });
    expect(pinned.runs[0]!.sets).toEqual(['hardware.spec=eraps-cr3', 'hostProcesses.stuffing=auto']);
    const varied = plan({
      vary: [parseVary('hardware.spec=eraps-apm'), parseVary('hardware.rapEntries=32,64')],
    });
    expect(varied.vary).toEqual({
      'hardware.spec': ['eraps-apm'],
      'hostProcesses.stuffing': ['auto', 'never'],
      'hardware.rapEntries': [32, 64],
    });
    expect(varied.variants).toHaveLength(4);
  });

  it('with nothing varied, plans one variant with an empty set', () => {
    const p = plan({ sets: ['hardware.spec=legacy', 'hostProcesses.stuffing=auto'], seeds: [1, 2, 3] });
    expect(p.variants).toEqual([{}]);
    expect(p.runs).toHaveLength(3);
  });

  it('gives each run an id that depends on what it computes, not on where it was asked from', () => {
    const a = plan({ seeds: [1, 2] });
    const b = plan({ seeds: [2, 1], file: 'elsewhere/p.yaml' });
    const ids = new Set(a.runs.map((r) => r.id));
    expect(ids.size).toBe(a.runs.length);
    expect(new Set(b.runs.map((r) => r.id))).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^run-[0-9a-f]{40}$/);
    const base = { rapsim: '1', text: 't', sets: ['a=1'], seed: 1 };
    expect(runId(base)).toBe(runId({ ...base }));
    for (const other of [{ rapsim: '2' }, { text: 'u' }, { sets: ['a=2'] }, { seed: 2 }, { untilPs: 5 }])
      expect(runId({ ...base, ...other })).not.toBe(runId(base));
  });

  it('refuses bad values where they came from: the matrix entry or the --vary argument', () => {
    const fromMatrix = scenarioErrorOf(() =>
      plan({ text: TEXT.replace('[legacy, eraps-amd]', '[legacy, eraps-xyz]') }),
    );
    expect(fromMatrix.file).toBe('p.yaml');
    expect(fromMatrix.path).toBe('matrix.hardware.spec');
    expect(fromMatrix.message).toMatch(/eraps-xyz/);
    expect(fromMatrix.message).not.toMatch(/--set/);
    const fromVary = scenarioErrorOf(() => plan({ vary: [parseVary('hardware.cores=2,0')] }));
    expect(fromVary.file).toBe('--vary');
    expect(fromVary.path).toBe('hardware.cores');
    const unknown = scenarioErrorOf(() => plan({ vary: [parseVary('hardware.spek=legacy')] }));
    expect(unknown.message).toMatch(/^--vary: hardware.spek: unknown key; expected one of cores, /);
  });

  it('runs the caller’s checks on every variant before anything runs', () => {
    const seen: string[] = [];
    plan({ check: (s) => seen.push(`${s.hardware.spec}/${s.hostProcesses.stuffing}`) });
    expect(seen).toEqual(['legacy/auto', 'legacy/never', 'eraps-amd/auto', 'eraps-amd/never']);
  });
});

describe('runIsSweep: when `rapsim run` sweeps', () => {
  const parse = (text: string, sets: string[] = []) => parseScenarioText(text, 'x.yaml', { sets });
  const plain = 'name: x\nhardware: { cores: 1 }\n';
  it('sweeps a matrix key not pinned by --set, and seeds: without --seed', () => {
    expect(runIsSweep(parse(plain), [], false)).toBe(false);
    expect(runIsSweep(parse(TEXT), [], false)).toBe(true);
    expect(runIsSweep(parse(TEXT), ['hardware.spec=legacy'], false)).toBe(true);
    const pins = ['hardware.spec=legacy', 'hostProcesses.stuffing=auto'];
    expect(runIsSweep(parse(TEXT, pins), pins, false)).toBe(false);
    expect(runIsSweep(parse(`${plain}seeds: 1..3\n`), [], false)).toBe(true);
    expect(runIsSweep(parse(`${plain}seeds: 1..3\n`), [], true)).toBe(false);
  });
});

describe('bundled studies (scenarios/sweeps)', () => {
  const dir = join(repoRoot, 'scenarios/sweeps');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  it.each(files)('%s plans: every variant is a valid scenario with a topology', (f) => {
    const file = `scenarios/sweeps/${f}`;
    const p = planSweep({
      rapsim: '0',
      file,
      text: readFileSync(join(dir, f), 'utf8'),
      sets: [],
      vary: [],
      replayOf: () => '',
      check: (s) => void buildTopology(s, 1),
    });
    expect(p.variants.length).toBeGreaterThan(1);
    expect(p.runs.length).toBe(p.variants.length * p.seeds.length);
  });
});
