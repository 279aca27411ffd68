import { SimulationError } from '../actors/simulationError.js';
import { toNs } from '../actors/time.js';
import { buildReport, exitCodeOf } from '../report/report.js';
import type { Scenario } from '../scenario/schema.js';
import { runSimulation } from '../workers/runSimulation.js';
import { deepFreeze } from './freeze.js';
import type { LocalRunTask, RunError, RunOutcome, SweepReport } from './types.js';

/**
 * Runs one simulation of a sweep on the calling thread (`inProcess`, one partition: results do
 * not depend on the worker count) and never throws: a model error or a reached event cap
 * becomes a failed run (exit 3) that carries the error, so the sweep goes on. The replay
 * command is left empty — the plan knows how the user spelled the run ({@link stampReplay}).
 *
 * A task that carries its parsed `scenario` (the embedded backend's) is run as it is; one that
 * carries only text (a BullMQ job) is parsed here, the parser loaded on first need.
 *
 * @param version the rapsim version of the code running the task; a task planned by another
 *   version is refused, because its results would not be that version's
 * @example
 * const outcome = await executeRun({ rapsim: version, text, file, sets: [], seed: 1 }, version);
 * if (outcome.exit !== 3) outcome.report.traceDigest
 */
export async function executeRun(task: LocalRunTask, version: string): Promise<RunOutcome> {
  let name = task.file;
  try {
    if (task.rapsim !== version) {
      throw new Error(`planned by rapsim ${task.rapsim} but run by rapsim ${version}`);
    }
    const parsed = task.scenario ?? (await parsedScenario(task));
    name = parsed.name;
    const scenario = { ...parsed, seed: task.seed };
    const until = task.untilPs ?? scenario.until;
    const result = await runSimulation(scenario, { workers: 1, inProcess: true, until });
    const {
      wallMs: _wall,
      workers: _workers,
      ...report
    } = buildReport(scenario, result, {
      version,
      workers: 1,
      replay: '',
    });
    return { exit: exitCodeOf({ ...report, wallMs: 0, workers: 1 }), report };
  } catch (err) {
    return {
      exit: 3,
      failed: { rapsim: version, scenario: name, seed: task.seed, error: runError(err), replay: '' },
    };
  }
}

/** Variants parsed on this thread: a sweep runs every variant once per seed. */
const parsedCache = new Map<string, Scenario>();
const PARSED_MAX = 64;

/**
 * The task's scenario with its sets applied (parsing and validation cost about a run's worth).
 * The parser (YAML, zod and the schema) is imported here, not at the top: loading it is about
 * 200 ms of a sweep thread's start, and threads of the embedded backend never need it.
 */
async function parsedScenario(task: LocalRunTask): Promise<Scenario> {
  const key = JSON.stringify([task.file, task.text, task.sets]);
  let s = parsedCache.get(key);
  if (!s) {
    const { parseScenarioText } = await import('../scenario/load.js');
    // Frozen: runs share it, so a model that wrote into its scenario would throw, not leak.
    s = deepFreeze(parseScenarioText(task.text, task.file, { sets: task.sets }));
    if (parsedCache.size >= PARSED_MAX) parsedCache.delete(parsedCache.keys().next().value!);
    parsedCache.set(key, s);
  }
  return s;
}

/** An error as a failed run reports it: plain data, the same on every machine (no stack). */
export function runError(err: unknown): RunError {
  if (err instanceof SimulationError) {
    return {
      kind: err.detail.startsWith('event cap') ? 'event-cap' : 'internal',
      message: err.message,
      actor: err.actor,
      event: err.event,
      atNs: toNs(err.time),
    };
  }
  return { kind: 'internal', message: err instanceof Error ? err.message : String(err) };
}

/** The outcome with the plan's replay command for this run. */
export function stampReplay(o: RunOutcome, replay: string): RunOutcome {
  return o.exit === 3
    ? { exit: 3, failed: { ...o.failed, replay } }
    : { exit: o.exit, report: { ...o.report, replay } satisfies SweepReport };
}
