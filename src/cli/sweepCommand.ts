import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ScenarioError } from '../scenario/errors.js';
import { parseSeedRange } from '../scenario/sweep.js';
import { assemble } from '../sweep/aggregate.js';
import { runsCsv, variantsCsv } from '../sweep/csv.js';
import { runLocal, type SweepHooks, startSweepThreads } from '../sweep/localBackend.js';
import { LocalCache } from '../sweep/localCache.js';
import { parseVary, planSweep } from '../sweep/plan.js';
import type { SweepPool } from '../sweep/pool.js';
import { parseSweepColumns, renderSweep } from '../sweep/render.js';
import type { RunOutcome, SweepDocument, SweepPlan } from '../sweep/types.js';
import { buildTopology } from '../workers/compose.js';
import { parseInteger, parseTimeFlag, prepareOutDir } from './flags.js';
import { replayCommand } from './replay.js';
import { checkModelled, type RunFlags, UsageError } from './runCommand.js';
import { createSweepProgress, type ProgressMode } from './sweepProgress.js';
import { resultsVersion } from './version.js';

/** Flags of `rapsim sweep` as commander hands them over. */
export interface SweepFlags {
  seeds?: string;
  vary: string[];
  set: string[];
  until?: string;
  threads?: string;
  json?: boolean;
  out?: string;
  quiet?: boolean;
  backend?: string;
  redis?: string;
  columns?: string;
  cache?: string;
}

/** A sweep, its flags read: what both `rapsim sweep` and `rapsim run` on a matrix scenario ask. */
export interface SweepOptions {
  sets: string[];
  vary: string[];
  /** Explicit seeds (`--seeds A..B`, or `run --seed N`); otherwise the scenario's. */
  seeds?: () => number[];
  until?: string | undefined;
  threads?: string | undefined;
  /** The flag `threads` came from, for messages (`--threads`, or `--workers` for `run`). */
  threadsFlag: string;
  json: boolean;
  out?: string | undefined;
  quiet: boolean;
  backend: string;
  redis?: string | undefined;
  /** `--columns a,b,c`: the table's columns after the varied keys (text output only). */
  columns?: string | undefined;
  /** `--cache DIR`: keep finished runs there and reuse them (local backend). */
  cache?: string | undefined;
}

type Io = { out: NodeJS.WriteStream; err: NodeJS.WriteStream };

/** Exit code of a sweep stopped by Ctrl-C (128 + SIGINT), after it printed what finished. */
export const INTERRUPTED = 130;

/**
 * `rapsim sweep <scenario.yaml>`: the cross product of the scenario's `matrix:` and `--vary`
 * values × seeds, one simulation per piscina task (or per BullMQ job with `--backend bullmq`).
 */
export function sweepCommand(file: string, flags: SweepFlags, io: Io): Promise<number> {
  const seeds = flags.seeds;
  return runSweep(
    file,
    {
      sets: flags.set,
      vary: flags.vary,
      ...(seeds !== undefined ? { seeds: () => parseSeedRange(seeds) } : {}),
      until: flags.until,
      threads: flags.threads,
      threadsFlag: '--threads',
      json: flags.json === true,
      out: flags.out,
      quiet: flags.quiet === true,
      backend: flags.backend ?? 'local',
      redis: flags.redis,
      columns: flags.columns,
      cache: flags.cache,
    },
    io,
  );
}

/**
 * `rapsim run` on a scenario with `matrix:` (keys not pinned by `--set`) or `seeds:` (without
 * `--seed`): the same sweep. `--seed N` sweeps the variants at seed N; `--workers N` is the
 * number of sweep threads (each simulation runs on one).
 */
export function sweepFromRun(file: string, flags: RunFlags, io: Io): Promise<number> {
  const seed = flags.seed;
  // Flags about one simulation would be silently dropped by a sweep: refuse them instead.
  const single = (
    [
      ['--latency', flags.latency],
      ['--trace-window', flags.traceWindow],
      ['--trace-limit', flags.traceLimit],
      ['--trace-sample', flags.traceSample],
    ] as const
  ).find(([, v]) => v !== undefined && v !== false);
  if (single) {
    io.err.write(
      `rapsim: ${file}: ${single[0]}: describes one simulation, but this scenario is a sweep (its matrix: keys not pinned by --set, or seeds: without --seed). Pin every varied key with --set key=value and give --seed N to run one variant, as each replay command the sweep prints does.\n`,
    );
    return Promise.resolve(2);
  }
  return runSweep(
    file,
    {
      sets: flags.set,
      vary: [],
      ...(seed !== undefined ? { seeds: () => [parseInteger('--seed', seed, 0)] } : {}),
      until: flags.until,
      threads: flags.workers,
      threadsFlag: '--workers',
      json: flags.json === true,
      out: flags.out,
      quiet: flags.quiet === true,
      backend: 'local',
      columns: flags.columns,
      cache: flags.cache,
    },
    io,
  );
}

interface Prepared {
  plan: SweepPlan;
  threads: number;
  columns?: string[] | undefined;
  cache?: LocalCache | undefined;
  /** The local backend's threads, when they could be started before planning. */
  pool?: SweepPool | undefined;
}

/**
 * Reads and checks everything before the first run: bad input costs no simulation (exit 2).
 * The flags come first; then, when the explicit seeds already say how many threads the sweep
 * will use, the local backend's threads start, so that their start overlaps the planning (see
 * {@link startSweepThreads}). If planning then fails, they are stopped again.
 */
async function prepare(file: string, o: SweepOptions): Promise<Prepared> {
  const threads =
    o.threads !== undefined ? parseInteger(o.threadsFlag, o.threads, 1) : availableParallelism();
  if (o.backend !== 'local' && o.backend !== 'bullmq') {
    throw new UsageError(`--backend: expected local or bullmq, found "${o.backend}".`);
  }
  if (o.backend === 'bullmq' && !o.redis) {
    throw new UsageError('--backend bullmq: expected --redis URL (e.g. redis://127.0.0.1:6379), found none.');
  }
  if (o.backend === 'local' && o.redis) {
    throw new UsageError('--redis: only used with --backend bullmq.');
  }
  if (o.backend === 'bullmq' && o.cache !== undefined) {
    throw new UsageError(
      '--cache: only for the local backend; BullMQ keeps finished runs in Redis and reuses them.',
    );
  }
  const until = o.until !== undefined ? { text: o.until, ps: parseTimeFlag('--until', o.until) } : undefined;
  const columns = o.columns !== undefined ? columnsFlag(o.columns) : undefined;
  const seeds = o.seeds?.();
  const pool =
    o.backend === 'local' ? startSweepThreads(threads, seeds?.length ?? 0, resultsVersion()) : undefined;
  try {
    const planned = plan(file, o, seeds, until);
    // Made only for a sweep that passed every check, like --out.
    const cache = o.cache !== undefined ? cacheFlag(o.cache) : undefined;
    return { plan: planned, threads, pool, columns, cache };
  } catch (err) {
    await pool?.destroy();
    throw err;
  }
}

/** `--cache DIR`, created if needed, or a {@link UsageError} saying why it cannot be. */
function cacheFlag(dir: string): LocalCache {
  try {
    return new LocalCache(dir);
  } catch (err) {
    throw new UsageError(
      `--cache: expected a directory rapsim can create and write, found "${dir}" (${err instanceof Error ? err.message : String(err)}).`,
    );
  }
}

/** `--columns`, or a {@link UsageError} naming every column there is. */
function columnsFlag(text: string): string[] {
  try {
    return parseSweepColumns(text);
  } catch (err) {
    throw new UsageError(`--columns: ${err instanceof Error ? err.message : String(err)}.`);
  }
}

/** The sweep's plan (throws on bad input), and `--out` made ready. */
function plan(
  file: string,
  o: SweepOptions,
  seeds: number[] | undefined,
  until: { text: string; ps: number } | undefined,
): SweepPlan {
  const text = readScenario(file);
  const plan = planSweep({
    rapsim: resultsVersion(),
    file,
    text,
    sets: o.sets,
    vary: o.vary.map(parseVary),
    seeds,
    until,
    replayOf: ({ seed, sets }) => replayCommand(file, { seed, until: o.until, sets }),
    check: (scenario) => {
      checkModelled(file, scenario);
      buildTopology(scenario, 1);
    },
  });
  if (o.out) prepareOutDir(o.out);
  return plan;
}

/**
 * Runs a planned sweep and reports it: progress on stderr, the table (or `--json`) on stdout,
 * CSV and JSON into `--out`. Ctrl-C stops it; what finished is still reported (exit 130).
 */
export async function runSweep(file: string, o: SweepOptions, io: Io): Promise<number> {
  let prepared: Prepared;
  try {
    prepared = await prepare(file, o);
  } catch (err) {
    return badInput(err, file, io.err);
  }
  const { plan, threads, pool, columns, cache } = prepared;
  if (o.backend === 'bullmq') {
    const { checkRedis, RedisUnreachable } = await import('../sweep/bullmqQueues.js');
    try {
      await checkRedis(o.redis!);
    } catch (err) {
      if (!(err instanceof RedisUnreachable)) throw err;
      io.err.write(`rapsim: ${err.message}\n`);
      return 2;
    }
  }
  const mode: ProgressMode = o.quiet ? 'off' : io.err.isTTY ? 'bar' : o.json ? 'off' : 'lines';
  const progress = createSweepProgress(io.err, plan, mode);
  const controller = new AbortController();
  const stop = (): void => {
    progress.note('rapsim: stopping (Ctrl-C again to quit at once); runs that finished are reported');
    controller.abort();
  };
  process.once('SIGINT', stop);
  const hooks: SweepHooks = { signal: controller.signal, onOutcome: (run, x) => progress.done(run, x) };
  const started = performance.now();
  let result: { outcomes: (RunOutcome | undefined)[]; document?: SweepDocument | undefined };
  try {
    result =
      o.backend === 'bullmq'
        ? await (await import('../sweep/bullmqBackend.js')).runOnBullmq(
            plan,
            { redisUrl: o.redis!, note: (t) => progress.note(t) },
            hooks,
          )
        : { outcomes: await runLocal(plan, { threads, version: resultsVersion(), pool, cache }, hooks) };
  } catch (err) {
    progress.stop();
    const msg = err instanceof Error ? err.message : String(err);
    io.err.write(`rapsim: sweep failed: ${msg}\n`);
    return 3;
  } finally {
    process.off('SIGINT', stop);
    progress.stop();
  }
  const interrupted = controller.signal.aborted;
  if (cache && !o.quiet) {
    io.err.write(
      `rapsim: --cache ${cache.dir}: ${cache.hits} of ${plan.runs.length} run(s) taken from it, the others simulated\n`,
    );
  }
  if (cache?.writeError)
    io.err.write(`rapsim: --cache ${cache.dir}: runs could not be kept: ${cache.writeError}\n`);
  const doc = result.document ?? assemble(plan, result.outcomes, { interrupted });
  if (o.out) writeOut(o.out, doc);
  if (o.json) io.out.write(`${JSON.stringify(doc, null, 2)}\n`);
  else if (!o.quiet) {
    const where = o.backend === 'bullmq' ? `BullMQ at ${o.redis}` : `${threads} thread(s)`;
    io.out.write(`${renderSweep(doc, { wallMs: performance.now() - started, threads: where, columns })}\n`);
  }
  return interrupted ? INTERRUPTED : doc.exitCode;
}

/** `--out DIR`: sweep.json (the `--json` document), variants.csv and runs.csv. */
function writeOut(dir: string, doc: SweepDocument): void {
  writeFileSync(join(dir, 'sweep.json'), `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(join(dir, 'variants.csv'), variantsCsv(doc));
  writeFileSync(join(dir, 'runs.csv'), runsCsv(doc));
}

function readScenario(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ScenarioError({ file, path: '', expected: '', problem: `cannot read the file (${reason})` });
  }
}

function badInput(err: unknown, file: string, stderr: NodeJS.WriteStream): number {
  if (err instanceof ScenarioError || err instanceof UsageError) {
    stderr.write(`rapsim: ${err.message}\n`);
    return 2;
  }
  stderr.write(`rapsim: ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
  return 2;
}
