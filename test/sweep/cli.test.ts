import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/runCommand.js';
import { type SweepFlags, sweepCommand } from '../../src/cli/sweepCommand.js';
import { workerCommand } from '../../src/cli/workerCommand.js';
import type { SweepDocument, SweepReport } from '../../src/sweep/types.js';
import { assertBuilt, rapsim, repoRoot, shellWords, tempDir } from '../helpers/cli.js';

const STUDY = 'scenarios/sweeps/bare-metal-spec-x-stuffing.yaml';
/** The study, shortened: 4 specs × 2 stuffing policies × 2 seeds of 10 µs. */
const SHORT = [STUDY, '--seeds', '1..2', '--until', '10us', '--vary', 'hostProcesses.stuffing=auto,never'];

function docOf(stdout: string): SweepDocument {
  return JSON.parse(stdout) as SweepDocument;
}

describe('rapsim sweep', () => {
  it('prints byte-identical JSON for --threads 1 and 2; each report replays alone', async () => {
    const [one, two] = await Promise.all([
      rapsim(['sweep', ...SHORT, '--threads', '1', '--json']),
      rapsim(['sweep', ...SHORT, '--threads', '2', '--json']),
    ]);
    expect(one.code, one.stderr).toBe(1);
    expect(two.code).toBe(1);
    expect(two.stdout).toBe(one.stdout);
    expect(one.stderr).toBe(''); // --json off a terminal: no progress lines
    const doc = docOf(one.stdout);
    expect(doc.runs).toEqual({ planned: 16, finished: 16, failed: 2, crashed: 0 });
    expect(doc.variants).toHaveLength(8);
    expect(doc.variants[0]!.set).toEqual({ 'hardware.spec': 'legacy', 'hostProcesses.stuffing': 'auto' });
    for (const v of doc.variants) {
      expect(v.seeds).toEqual([1, 2]);
      for (const r of v.reports as SweepReport[]) {
        expect(r).not.toHaveProperty('wallMs');
        expect(r).not.toHaveProperty('workers');
      }
    }
    const legacy = doc.variants[0]!;
    expect(legacy.summary.failingSeeds).toEqual([1, 2]);
    expect(legacy.summary.violations['rap-promised-clear']?.runs).toBe(2);
    for (const v of doc.variants.slice(1)) expect(v.summary.failingSeeds).toEqual([]);
    // The printed replay command reproduces the run: same digest, same findings.
    const failing = legacy.reports[1] as SweepReport;
    const words = shellWords(failing.replay);
    expect(words.slice(0, 2)).toEqual(['rapsim', 'run']);
    const alone = await rapsim([...words.slice(1), '--json']);
    const report = JSON.parse(alone.stdout) as SweepReport;
    expect(alone.code).toBe(1);
    expect(report.traceDigest).toBe(failing.traceDigest);
    expect(report.violationCounts).toEqual(failing.violationCounts);
  });

  it('prints the table, every failing seed with its replay command, and writes CSV + JSON with --out', async () => {
    const out = tempDir();
    const r = await rapsim([
      'sweep',
      STUDY,
      '--seeds',
      '3..4',
      '--until',
      '20us',
      '--set',
      'hostProcesses.stuffing=auto',
      '--vary',
      'hardware.spec=legacy,eraps-amd',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/· 2 variant\(s\) × 2 seed\(s\) = 4 run\(s\) · \d+ thread\(s\)/);
    expect(r.stdout).toMatch(
      /^hardware\.spec\s+runs\s+failing\s+violations \(runs, uses\/run\)\s+shootdown p50\s+p99/m,
    );
    // Its uses per run are the mean of the failing seeds' counts printed below.
    const perSeed = [...r.stdout.matchAll(/hardware\.spec=legacy seed \d: rap-promised-clear ×(\d+)/g)].map(
      (m) => Number(m[1]),
    );
    expect(perSeed).toHaveLength(2);
    const mean = Math.round((perSeed[0]! + perSeed[1]!) / 2);
    expect(r.stdout).toMatch(new RegExp(`^legacy\\s+2\\s+2\\s+rap-promised-clear 2/2 ×${mean}/run\\s`, 'm'));
    expect(r.stdout).toMatch(/^eraps-amd\s+2\s+0\s+none\s/m);
    for (const seed of [3, 4]) {
      expect(r.stdout).toContain(
        `rapsim run ${STUDY} --seed ${seed} --until 20us --set hostProcesses.stuffing=auto --set hardware.spec=legacy\n`,
      );
    }
    expect(r.stdout).not.toContain('--set hardware.spec=eraps-amd\n');
    // Off a terminal, progress is one line per finished run on stderr.
    expect(r.stderr.trim().split('\n')).toHaveLength(4);
    expect(r.stderr).toMatch(/^\[\d\/4\] hardware\.spec=legacy seed [34]: FAILED \(rap-promised-clear ×\d+/m);
    const doc = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepDocument;
    expect(doc.vary).toEqual({ 'hardware.spec': ['legacy', 'eraps-amd'] });
    expect(readFileSync(join(out, 'variants.csv'), 'utf8').split('\r\n')[1]).toMatch(/^legacy,2,2,0,/);
    expect(readFileSync(join(out, 'runs.csv'), 'utf8').trimEnd().split('\r\n')).toHaveLength(5);
  });

  it('reports a run that reaches its event cap as a failed run with its replay command, and goes on', async () => {
    const out = tempDir();
    const litmus = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
    const r = await rapsim(['sweep', litmus, '--vary', 'maxEvents=2,1000', '--seeds', '1..2', '--out', out]);
    expect(r.code).toBe(3);
    const doc = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepDocument;
    expect(doc.runs).toEqual({ planned: 4, finished: 4, failed: 2, crashed: 2 });
    const [capped, fine] = doc.variants;
    expect(capped!.summary.crashedSeeds).toEqual([1, 2]);
    expect(capped!.reports[0]).toMatchObject({
      seed: 1,
      error: { kind: 'event-cap', message: expect.stringMatching(/event cap of 2/) },
      replay: `rapsim run ${litmus} --seed 1 --set maxEvents=2`,
    });
    expect(fine!.summary).toMatchObject({ runs: 2, failingSeeds: [] });
    expect(r.stdout).toMatch(/^2\s+2\s+2 \(2 crashed\)\s/m);
    expect(r.stdout).toMatch(/maxEvents=2 seed 1: event cap reached — actor pcpu:\d+/);
    expect(r.stdout).toContain(`    rapsim run ${litmus} --seed 2 --set maxEvents=2\n`);
  });

  it('refuses bad input with exit 2 and one paragraph, before running anything', async () => {
    const cases: [(io: Io) => Promise<number>, RegExp][] = [
      [(io) => sweep(io, { vary: ['hardware.spek=legacy'] }), /^rapsim: --vary: hardware\.spek: unknown key/],
      [
        (io) => sweep(io, { vary: ['hardware.spec=legacy,nope'] }),
        /--vary: hardware\.spec: expected one of legacy/,
      ],
      [(io) => sweep(io, { seeds: '4..1' }), /--seeds: expected seeds as "A\.\.B"/],
      // The seeds fix the thread count, so the threads start before planning fails: stopped again.
      [
        (io) => sweep(io, { seeds: '1..4', threads: '2', vary: ['hardware.spek=legacy'] }),
        /^rapsim: --vary: hardware\.spek: unknown key/,
      ],
      [(io) => sweep(io, { threads: '0' }), /--threads: expected an integer ≥ 1, found "0"/],
      [
        (io) => sweep(io, { columns: 'violations,clear_rap' }),
        /^rapsim: --columns: expected column names from runs, failing, .*, found "clear_rap"/,
      ],
      [(io) => sweep(io, { columns: 'p50,P50' }), /^rapsim: --columns: "p50" is named twice/],
      [
        (io) => sweep(io, { backend: 'bullmq', redis: 'redis://127.0.0.1:1', cache: 'x' }),
        /^rapsim: --cache: only for the local backend/,
      ],
      [
        (io) => sweep(io, { cache: `${STUDY}/cannot-be-a-directory` }),
        /^rapsim: --cache: expected a directory rapsim can create and write/,
      ],
      [
        (io) => runCommand('scenarios/default.yaml', { set: [], cache: 'x' }, io),
        /^rapsim: --cache: only for a sweep, but this scenario is one simulation/,
      ],
      // `run` on a study would drop a flag about one simulation: refused, not ignored.
      [
        (io) => runCommand(STUDY, { set: [], latency: true }, io),
        /\.yaml: --latency: describes one simulation, but this scenario is a sweep/,
      ],
      [
        (io) => runCommand(STUDY, { set: [], traceLimit: '5' }, io),
        /--trace-limit: describes one simulation, but this scenario is a sweep/,
      ],
      [
        (io) => runCommand('scenarios/default.yaml', { set: [], columns: 'runs' }, io),
        /^rapsim: --columns: only for a sweep, but this scenario is one simulation/,
      ],
      [(io) => sweep(io, { backend: 'bullmq' }), /--backend bullmq: expected --redis URL/],
      [(io) => sweep(io, { backend: 'bullmq', redis: 'redis://127.0.0.1:1' }), /expected a reachable Redis/],
      [(io) => sweep(io, {}, 'nope.yaml'), /nope\.yaml.*cannot read the file \(ENOENT\)/],
      [
        (io) => workerCommand({ redis: 'localhost:6379', lock: '30s' }, io),
        /--redis: expected a redis:\/\/host/,
      ],
      [
        (io) => workerCommand({ redis: 'redis://127.0.0.1:1', lock: '10ms' }, io),
        /--lock: expected at least 1s/,
      ],
    ];
    for (const [run, message] of cases) {
      const io = fakeIo();
      expect(await run(io), io.text.err).toBe(2);
      expect(io.text.out).toBe('');
      expect(io.text.err.trim().split('\n')).toHaveLength(1);
      expect(io.text.err).toMatch(message);
    }
  });
});

type Io = Parameters<typeof sweepCommand>[2] & { text: { out: string; err: string } };

/** Streams that keep what the command writes (not a terminal). */
function fakeIo(): Io {
  const text = { out: '', err: '' };
  const stream = (k: 'out' | 'err') => {
    const write = (s: string) => {
      text[k] += s;
      return true;
    };
    return { isTTY: false, write } as unknown as NodeJS.WriteStream;
  };
  return { out: stream('out'), err: stream('err'), text };
}

function sweep(io: Io, flags: Partial<SweepFlags>, file = STUDY): Promise<number> {
  return sweepCommand(file, { vary: [], set: [], ...flags }, io);
}

describe('rapsim run on a matrix scenario', () => {
  it('sweeps the variants and seeds the user did not pin, and replays one run when all are pinned', async () => {
    const [swept, atSeed, single] = await Promise.all([
      rapsim(['run', STUDY, '--until', '10us', '--set', 'hardware.spec=eraps-amd', '--json']),
      rapsim([
        'run',
        STUDY,
        '--until',
        '10us',
        '--seed',
        '9',
        '--set',
        'hostProcesses.stuffing=never',
        '--json',
      ]),
      rapsim([
        'run',
        STUDY,
        '--until',
        '20us',
        '--seed',
        '2',
        '--set',
        'hardware.spec=legacy',
        '--set',
        'hostProcesses.stuffing=auto',
        '--json',
      ]),
    ]);
    const doc = docOf(swept.stdout);
    expect(swept.code).toBe(0);
    expect(doc.vary).toEqual({ 'hostProcesses.stuffing': ['auto', 'always', 'never'] });
    expect(doc.seeds).toEqual([1, 2, 3, 4]);
    const one = docOf(atSeed.stdout);
    expect(one.seeds).toEqual([9]);
    expect(one.variants.map((v) => v.set['hardware.spec'])).toEqual([
      'legacy',
      'eraps-apm',
      'eraps-amd',
      'eraps-cr3',
    ]);
    const report = JSON.parse(single.stdout) as SweepReport & { workers: number };
    expect(single.code).toBe(1);
    expect(report.workers).toBe(1);
    expect(report.seed).toBe(2);
  });
});

describe('Ctrl-C', () => {
  it('stops the sweep cleanly and prints what finished (exit 130)', async () => {
    assertBuilt();
    const child = spawn(
      process.execPath,
      ['bin/rapsim.js', 'sweep', STUDY, '--seeds', '1..50', '--threads', '2'],
      {
        cwd: repoRoot,
        env: { ...process.env, CI: 'true' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/^\[\s*3\/600\]/m.test(stderr)) resolve();
      });
    });
    const sent = performance.now();
    child.kill('SIGINT');
    const code = await exited;
    expect(code).toBe(130);
    expect(performance.now() - sent).toBeLessThan(15_000);
    expect(stderr).toMatch(/stopping/);
    const finished = Number(/interrupted: (\d+) of 600 run\(s\) finished/.exec(stdout)?.[1]);
    expect(finished).toBeGreaterThanOrEqual(3);
    expect(finished).toBeLessThan(600);
    // Every variant has its row, whether or not one of its runs finished; the rows add up.
    const rows = [...stdout.matchAll(/^(legacy|eraps-\w+)\s+(auto|always|never)\s+(\d+)\s/gm)];
    expect(rows).toHaveLength(12);
    expect(rows.reduce((n, m) => n + Number(m[3]), 0)).toBe(finished);
  });
});
