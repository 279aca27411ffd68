import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimulationError } from '../../src/actors/simulationError.js';
import { assemble, summarize } from '../../src/sweep/aggregate.js';
import { SWEEP_COLUMN_NAMES } from '../../src/sweep/columnNames.js';
import { runsCsv, variantsCsv } from '../../src/sweep/csv.js';
import { dispatchOrder, runLocal, taskOf } from '../../src/sweep/localBackend.js';
import { parseVary, planSweep } from '../../src/sweep/plan.js';
import { parseSweepColumns, renderSweep, violationsCell } from '../../src/sweep/render.js';
import { executeRun, runError } from '../../src/sweep/runTask.js';
import type { RunOutcome, SweepPlan } from '../../src/sweep/types.js';
import { repoRoot } from '../helpers/cli.js';

const V = '0.0.0-test';
const LITMUS = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
const text = readFileSync(join(repoRoot, LITMUS), 'utf8');

/** The litmus over two specs × two seeds, and a third variant that hits its event cap. */
function litmusPlan(vary = ['hardware.spec=legacy,eraps-amd'], seeds = [1, 2]): SweepPlan {
  return planSweep({
    rapsim: V,
    file: LITMUS,
    text,
    sets: [],
    vary: vary.map(parseVary),
    seeds,
    replayOf: ({ seed, sets }) =>
      `rapsim run ${LITMUS} --seed ${seed}${sets.map((s) => ` --set ${s}`).join('')}`,
  });
}

describe('one run of a sweep (executeRun)', () => {
  it('reports like `rapsim run`, without wall-clock fields, and never throws', async () => {
    const o = await executeRun({ rapsim: V, text, file: LITMUS, sets: [], seed: 1 }, V);
    expect(o.exit).toBe(0); // the litmus's expect: allows (and requires) rap-promised-clear
    if (o.exit === 3) throw new Error('crashed');
    expect(o.report).not.toHaveProperty('wallMs');
    expect(o.report).not.toHaveProperty('workers');
    expect(o.report.violationCounts['rap-promised-clear']).toBeGreaterThan(0);
    expect(o.report.seed).toBe(1);
    const again = await executeRun({ rapsim: V, text, file: LITMUS, sets: [], seed: 1 }, V);
    expect(again).toEqual(o);
  });

  it('turns a reached event cap into a failed run (exit 3) that says so', async () => {
    const o = await executeRun({ rapsim: V, text, file: LITMUS, sets: ['maxEvents=2'], seed: 1 }, V);
    expect(o.exit).toBe(3);
    if (o.exit !== 3) return;
    expect(o.failed.error.kind).toBe('event-cap');
    expect(o.failed.error.message).toMatch(/event cap of 2/);
    expect(o.failed.error.actor).toMatch(/^pcpu:/);
    expect(o.failed.scenario).toBe('litmus-stuffing-too-short');
  });

  it('names the actor, event and time of an internal error, as plain data', () => {
    const e = runError(new SimulationError('pcpu:0001', 'IPI', 1_500_000, 'queue invariant broken'));
    expect(e).toEqual({
      kind: 'internal',
      message: expect.stringMatching(/^actor pcpu:0001, event IPI, at 1.5us .*queue invariant broken$/),
      actor: 'pcpu:0001',
      event: 'IPI',
      atNs: 1500,
    });
    expect(runError(new Error('thread died'))).toEqual({ kind: 'internal', message: 'thread died' });
  });

  it('refuses a task planned by another rapsim version', async () => {
    const o = await executeRun({ rapsim: '1.0.0', text, file: LITMUS, sets: [], seed: 1 }, V);
    expect(o).toMatchObject({ exit: 3, failed: { error: { kind: 'internal' } } });
    if (o.exit === 3) expect(o.failed.error.message).toMatch(/planned by rapsim 1.0.0 but run by rapsim/);
  });
});

describe('the local backend (piscina, TypeScript sources through the tsx shim)', () => {
  it('gives every run the outcome it has alone, whatever the order runs finish in', async () => {
    const plan = litmusPlan(['hardware.spec=legacy,eraps-amd', 'maxEvents=2,100000']);
    const seen: number[] = [];
    const outcomes = await runLocal(
      plan,
      { threads: 2, version: V },
      { onOutcome: (run) => seen.push(run.index) },
    );
    expect([...seen].sort((a, b) => a - b)).toEqual(plan.runs.map((r) => r.index));
    for (const run of plan.runs) {
      expect(outcomes[run.index]).toEqual(await executeRun(taskOf(plan, run), V));
    }
    const doc = assemble(plan, outcomes, { interrupted: false });
    expect(doc.exitCode).toBe(3);
    // Failing: the 4 capped runs, and eraps-amd's 2 — the litmus's `expect.find` is not met there.
    expect(doc.runs).toEqual({ planned: 8, finished: 8, failed: 6, crashed: 4 });
    const capped = doc.variants.filter((v) => v.set.maxEvents === 2);
    for (const v of capped) {
      expect(v.summary.crashedSeeds).toEqual([1, 2]);
      for (const r of v.reports) expect(r.replay).toMatch(/--set maxEvents=2$/);
    }
  });

  it('stops when told: the runs that finished are kept, the rest are not started', async () => {
    const plan = litmusPlan(['hardware.spec=legacy,eraps-amd,eraps-apm,eraps-cr3'], [1, 2, 3, 4, 5, 6]);
    const stop = new AbortController();
    let finished = 0;
    const outcomes = await runLocal(
      plan,
      { threads: 1, version: V },
      {
        signal: stop.signal,
        onOutcome: () => {
          if (++finished === 2) stop.abort();
        },
      },
    );
    const done = outcomes.filter(Boolean).length;
    expect(done).toBeGreaterThanOrEqual(2);
    expect(done).toBeLessThan(plan.runs.length);
    const doc = assemble(plan, outcomes, { interrupted: true });
    expect(doc.interrupted).toBe(true);
    expect(doc.runs.finished).toBe(done);
    expect(renderSweep(doc)).toMatch(new RegExp(`interrupted: ${done} of 24 run\\(s\\) finished`));
  });

  it('dispatches seed-major, so a stopped sweep has something for every variant', () => {
    const plan = litmusPlan(['hardware.spec=legacy,eraps-amd,eraps-apm'], [1, 2]);
    expect(dispatchOrder(plan).map((r) => `${r.variant}/${r.seed}`)).toEqual([
      '0/1',
      '1/1',
      '2/1',
      '0/2',
      '1/2',
      '2/2',
    ]);
  });
});

describe('the sweep document, table and CSV', () => {
  const plan = litmusPlan();
  const report = (seed: number, promised: number, sd: [number, number] = [0, 0]) =>
    ({
      seed,
      violationCounts: { 'rap-promised-clear': promised, 'rap-cross-context': 1 },
      failing: promised ? ['rap-promised-clear'] : [],
      expect: null,
      traceDigest: `sha256:${seed}`,
      events: 10,
      simulatedNs: 20_000,
      replay: '',
      metrics: {
        rap: {
          returns: 100,
          mispredicted: 10,
          underflows: 5 * seed,
          clears: { 'vmrun-clear-rap': 2, 'mov-cr3': seed },
          stuffingCalls: 32,
        },
        shootdowns: {
          count: sd[0] ? 3 : 0,
          latencyNs: { p50: sd[0], p99: sd[1] },
          // Three 3-target shootdowns, `seed` of whose targets each interrupted.
          byTargets: sd[0] ? [{ targets: 3, crossSocket: false, count: 3, interruptedMean: seed }] : [],
        },
        costNs: { stuffing: 100 * seed, mispredictions: 5, flushIpiHandlers: 0 },
      },
    }) as never;
  const outcomes: RunOutcome[] = [
    { exit: 1, report: report(1, 3, [2000, 5000]) },
    { exit: 0, report: report(2, 0, [3000, 4000]) },
    {
      exit: 3,
      failed: {
        rapsim: V,
        scenario: 's',
        seed: 1,
        error: { kind: 'internal', message: 'boom, "x"' },
        replay: '',
      },
    },
    { exit: 0, report: report(2, 0) },
  ];

  it('summarizes a variant: failing and crashed seeds, tallies, medians, rates', () => {
    const s = summarize([1, 2], outcomes.slice(0, 2));
    expect(s.failingSeeds).toEqual([1]);
    expect(s.violations).toEqual({
      'rap-promised-clear': { runs: 1, occurrences: 3, advisory: false },
      'rap-cross-context': { runs: 2, occurrences: 2, advisory: true },
    });
    // 3 × 1 + 3 × 2 of 18 targets interrupted.
    expect(s.shootdowns).toEqual({ count: 6, p50Ns: 2000, p99Ns: 4000, interruptedShare: 0.5 });
    expect(s.mispredictionRate).toBeCloseTo(0.1);
    // The cost of clears: underflowed RETs over all returns, and clears per run by cause.
    expect(s.underflows).toBe(15);
    expect(s.underflowRate).toBeCloseTo(0.075);
    // Seed to seed: 10% mispredicted in both runs; 5% and 10% underflowed.
    expect(s.mispredictionRateSd).toBe(0);
    expect(s.underflowRateSd).toBeCloseTo(Math.SQRT1_2 * 0.05);
    expect(summarize([1], outcomes.slice(0, 1)).underflowRateSd).toBeNull();
    expect(s.clearsPerRun).toBe(3.5);
    expect(Object.entries(s.clearsPerRunByCause)).toEqual([
      ['mov-cr3', 1.5],
      ['vmrun-clear-rap', 2],
    ]);
    expect(s.costNsPerRun.stuffing).toBe(150);
    const crashed = summarize([1, 2], outcomes.slice(2));
    expect(crashed).toMatchObject({ runs: 2, failingSeeds: [1], crashedSeeds: [1] });
  });

  it('counts the VMRUNs with CLEAR_RAP per run where runs had VMs, apart from the clears every policy shares', () => {
    const vm = (seed: number, clearRapVmruns: number) => {
      const r = report(seed, 0) as { metrics: Record<string, unknown> };
      return { ...r, metrics: { ...r.metrics, worldSwitches: 40, clearRapVmruns } } as never;
    };
    const s = summarize(
      [1, 2],
      [
        { exit: 0, report: vm(1, 3) },
        { exit: 0, report: vm(2, 4) },
      ],
    );
    expect(s.clearRapVmrunsPerRun).toBe(3.5);
    expect(summarize([1], outcomes.slice(0, 1)).clearRapVmrunsPerRun).toBeNull();
    const doc = assemble(
      plan,
      [1, 2, 1, 2].map((seed) => ({ exit: 0, report: vm(seed, seed) })),
      {
        interrupted: false,
      },
    );
    expect(renderSweep(doc)).toMatch(/\sclears\/run\s+CLEAR_RAP\/run\s/);
    expect(renderSweep(doc)).toMatch(/^legacy\s.*\s3\.5\s+1\.5\s/m);
  });

  it('stamps every report with its replay command and prints every failing seed with it', () => {
    const doc = assemble(plan, outcomes, { interrupted: false });
    expect(doc.exitCode).toBe(3);
    expect(doc.variants.map((v) => v.seeds)).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(doc.variants[1]!.reports[0]).toMatchObject({ error: { message: 'boom, "x"' } });
    for (const [i, run] of plan.runs.entries()) {
      expect(doc.variants[run.variant]!.reports[i % 2]!.replay).toBe(run.replay);
    }
    const text = renderSweep(doc);
    expect(text).toMatch(/^hardware\.spec\s+runs\s+failing\s+violations/m);
    // Runs it occurred in, then uses per run over all the variant's runs (3 uses in 1 of 2 runs).
    expect(text).toMatch(
      /^legacy\s+2\s+1\s+rap-promised-clear 1\/2 ×1\.5\/run, rap-cross-context \(adv\) 2\/2 ×1\.0\/run/m,
    );
    expect(text).toMatch(/\smispredicted\s+underflowed\s+clears\/run\s+stuffing\/run\s/);
    // Rates over all returns, ± their spread over the seeds (underflows 5% and 10%: 3.54 points).
    expect(text).toMatch(/^legacy\s.*\s10\.00% ±0\.00\s+7\.50% ±3\.54\s+3\.5\s/m);
    expect(text).toMatch(/failing seeds \(2\)/);
    expect(text).toContain(`hardware.spec=legacy seed 1: rap-promised-clear ×3\n    ${plan.runs[0]!.replay}`);
    expect(text).toContain(`hardware.spec=eraps-amd seed 1: internal error — boom`);
    expect(text).toContain(plan.runs[2]!.replay);
    expect(text).not.toContain(plan.runs[1]!.replay);
  });

  it('gives each violated property its runs and its uses per run, never rounding a use to 0', () => {
    const cell = (runs: number, occurrences: number) =>
      violationsCell({
        runs: 40,
        violations: { 'rap-promised-clear': { runs, occurrences, advisory: false } },
      } as never);
    expect(cell(40, 1720)).toBe('rap-promised-clear 40/40 ×43/run');
    expect(cell(3, 12)).toBe('rap-promised-clear 3/40 ×0.3/run');
    expect(cell(1, 1)).toBe('rap-promised-clear 1/40 ×0.03/run');
    expect(violationsCell({ runs: 2, violations: {} } as never)).toBe('none');
  });

  it('leaves out of the text table a measurement no run has, and says so', () => {
    const quiet: RunOutcome[] = [1, 2, 1, 2].map((seed) => ({ exit: 0, report: report(seed, 0) }));
    const doc = assemble(plan, quiet, { interrupted: false });
    const text = renderSweep(doc);
    const header = text.split('\n').find((l) => l.startsWith('hardware.spec'))!;
    expect(header).not.toMatch(/shootdown p50/);
    expect(header).toMatch(/\sviolations \(runs, uses\/run\)\s+mispredicted\s+underflowed\s/);
    // These hand-built reports carry neither shootdowns nor work nor VMs.
    expect(text).toContain(
      'Not measured in any run: shootdown p50, p99, interrupted, CLEAR_RAP/run, work/s, steal.',
    );
    // The document keeps everything.
    expect(doc.variants[0]!.summary.shootdowns).toEqual({
      count: 0,
      p50Ns: 0,
      p99Ns: 0,
      interruptedShare: null,
    });
    // With shootdowns in one run the columns are back.
    expect(renderSweep(assemble(plan, outcomes, { interrupted: false }))).toMatch(/\sshootdown p50\s+p99\s/);
  });

  it('--columns picks and orders the columns after the varied keys, measured or not', () => {
    const doc = assemble(plan, outcomes, { interrupted: false });
    const headerOf = (text: string) => text.split('\n').find((l) => l.startsWith('hardware.spec'))!;
    const picked = renderSweep(doc, { columns: ['clear-rap', 'violations', 'mispredicted'] });
    // CLEAR_RAP/run was asked for, so it is shown although no run had a VM.
    expect(headerOf(picked).split(/\s{2,}/)).toEqual([
      'hardware.spec',
      'CLEAR_RAP/run',
      'violations (runs, uses/run)',
      'mispredicted',
    ]);
    expect(picked).toMatch(/^legacy\s+–\s+rap-promised-clear 1\/2 ×1\.5\/run.*\s10\.00% ±0\.00$/m);
    expect(picked).not.toContain('Not measured in any run');
    // Footnotes only for the columns shown: no cost or shootdown column here.
    expect(picked).not.toMatch(/costs: simulated time|shootdown p50\/p99: median/);
    expect(renderSweep(doc, { columns: ['stuffing'] })).toContain('costs: simulated time per run.');
    // Every name --columns accepts is a column, in table order.
    const all = headerOf(renderSweep(doc, { columns: [...SWEEP_COLUMN_NAMES] }));
    expect(all.split(/\s{2,}/)).toHaveLength(1 + SWEEP_COLUMN_NAMES.length);
    // Without --columns: the same order, minus what no run measured (no VMs here).
    const allNames = all.split(/\s{2,}/);
    expect(allNames.filter((h) => !['CLEAR_RAP/run', 'work/s', 'steal'].includes(h))).toEqual(
      headerOf(renderSweep(doc)).split(/\s{2,}/),
    );
    expect(parseSweepColumns(' Violations, p99')).toEqual(['violations', 'p99']);
    expect(() => parseSweepColumns('violations,')).toThrow(/found ""|found "violations,"/);
  });

  it('tallies each varied value: variants with a broken promise (advisory ones aside) and failing ones', () => {
    const two = litmusPlan(['hardware.spec=legacy,eraps-amd', 'hostProcesses.stuffing=auto,never'], [1]);
    // Variant order: (legacy, auto), (legacy, never), (eraps-amd, auto), (eraps-amd, never). Only the
    // first breaks rap-promised-clear; every report also has an advisory rap-cross-context.
    const doc = assemble(
      two,
      two.runs.map((r) =>
        r.variant === 0 ? { exit: 1, report: report(1, 3) } : { exit: 0, report: report(1, 0) },
      ),
      { interrupted: false },
    );
    expect(doc.byValue).toEqual({
      'hardware.spec': [
        { value: 'legacy', variants: 2, violating: 1, failing: 1 },
        { value: 'eraps-amd', variants: 2, violating: 0, failing: 0 },
      ],
      'hostProcesses.stuffing': [
        { value: 'auto', variants: 2, violating: 1, failing: 1 },
        { value: 'never', variants: 2, violating: 0, failing: 0 },
      ],
    });
    const text = renderSweep(doc);
    expect(text).toContain(
      'promises broken, by value (variants with a violation / variants with the value):',
    );
    expect(text).toMatch(/^ {2}hardware\.spec {11}legacy 1\/2, 1 failing · eraps-amd 0\/2$/m);
    expect(text).toMatch(/^ {2}hostProcesses\.stuffing {2}auto 1\/2, 1 failing · never 0\/2$/m);
    // With one varied key the table rows already are the values: no such lines.
    expect(renderSweep(assemble(plan, outcomes, { interrupted: false }))).not.toContain('by value');
  });

  it('writes CSV with one row per variant and per run, quoting what needs it', () => {
    const doc = assemble(plan, outcomes, { interrupted: false });
    const variants = variantsCsv(doc).trimEnd().split('\r\n');
    expect(variants).toHaveLength(3);
    expect(variants[0]).toMatch(/^hardware\.spec,runs,failing_runs,crashed_runs,rap-host-guest_runs,/);
    expect(variants[1]).toMatch(/^legacy,2,1,0,/);
    expect(variants[0]).toContain(
      ',misprediction_rate,misprediction_rate_sd,underflows,underflow_rate,underflow_rate_sd,clears_per_run,clear_rap_vmruns_per_run,',
    );
    // No world switch in these runs: CLEAR_RAP/run is empty, not 0.
    expect(variants[1]).toMatch(/,0\.1,0,15,0\.075,0\.0353\d*,3\.5,,/);
    const runs = runsCsv(doc).trimEnd().split('\r\n');
    expect(runs).toHaveLength(5);
    expect(runs[1]).toMatch(/^legacy,1,failed,0,3,/);
    expect(runs[0]).toContain(',returns,mispredicted,underflows,rap_clears,clear_rap_vmruns,stuffing_calls,');
    expect(runs[1]).toContain(',100,10,5,3,,32,');
    // A crashed run has as many cells as a finished one, the error and replay in their columns.
    const cells = (line: string) => line.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/).length;
    expect(cells(runs[3]!)).toBe(cells(runs[0]!));
    expect(runs[3]).toContain('internal');
    expect(runs[3]).toContain('"boom, ""x"""');
  });

  it('an empty plan is an empty document, not an error', async () => {
    const empty = { ...plan, runs: [] };
    const doc = assemble(empty, await runLocal(empty, { threads: 2, version: V }), { interrupted: false });
    expect(doc.runs.finished).toBe(0);
    expect(doc.exitCode).toBe(0);
  });
});
