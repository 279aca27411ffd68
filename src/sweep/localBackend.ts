import type { LocalCache } from './localCache.js';
import { parsedVariant } from './plan.js';
import { createSweepPool, type SweepPool } from './pool.js';
import { runError } from './runTask.js';
import type { LocalRunTask, PlannedRun, RunOutcome, RunTask, SweepPlan } from './types.js';

/** What a backend tells its caller while a sweep runs. */
export interface SweepHooks {
  /** Stops the sweep: no new run starts, running ones are abandoned; finished ones are kept. */
  signal?: AbortSignal | undefined;
  /** Called once per finished run, in completion order. */
  onOutcome?: ((run: PlannedRun, outcome: RunOutcome) => void) | undefined;
}

/** The task of one planned run: what it computes, nothing about how the user spelled it. */
export function taskOf(plan: SweepPlan, run: PlannedRun): RunTask {
  return {
    rapsim: plan.rapsim,
    text: plan.text,
    file: plan.file,
    sets: run.sets,
    seed: run.seed,
    ...(plan.until ? { untilPs: plan.until.ps } : {}),
  };
}

/**
 * The local task of a run: {@link taskOf} plus the variant as planning parsed it, so the sweep
 * thread neither loads the parser nor parses (see {@link LocalRunTask}).
 */
export function localTaskOf(plan: SweepPlan, run: PlannedRun): LocalRunTask {
  const scenario = parsedVariant(plan, run.variant);
  return scenario ? { ...taskOf(plan, run), scenario } : taskOf(plan, run);
}

/**
 * Runs seed-major (every variant's first seed, then every variant's second, ...), so that a
 * sweep stopped early has something for every variant.
 */
export function dispatchOrder(plan: SweepPlan): PlannedRun[] {
  const perSeed = plan.seeds.length;
  return [...plan.runs].sort((a, b) => (a.index % perSeed) - (b.index % perSeed) || a.variant - b.variant);
}

/**
 * The embedded backend: every run of the plan as one task on a piscina pool of `threads`
 * threads. Returns the outcomes indexed like `plan.runs` (undefined where a run did not finish
 * because the sweep was stopped). A task whose thread dies is a failed run; the sweep goes on.
 *
 * `opts.pool` hands over threads already started for this sweep (the CLI starts them before it
 * plans, see {@link startSweepThreads}); runLocal owns them from then on and destroys them like
 * its own. It must hold `min(threads, runs)` threads, as runLocal would have started.
 *
 * @example
 * const outcomes = await runLocal(plan, { threads: 2, version }, { onOutcome: (run) => bar.increment() });
 */
export async function runLocal(
  plan: SweepPlan,
  opts: { threads: number; version: string; pool?: SweepPool | undefined; cache?: LocalCache | undefined },
  hooks: SweepHooks = {},
): Promise<(RunOutcome | undefined)[]> {
  const { signal, onOutcome } = hooks;
  const outcomes: (RunOutcome | undefined)[] = new Array(plan.runs.length);
  // Runs the cache holds are done before any thread starts; only the others are simulated.
  const order: PlannedRun[] = [];
  for (const run of dispatchOrder(plan)) {
    const kept = opts.cache?.get(run);
    if (!kept) order.push(run);
    else {
      outcomes[run.index] = kept;
      onOutcome?.(run, kept);
    }
  }
  if (order.length === 0 || signal?.aborted) {
    await opts.pool?.destroy();
    return outcomes;
  }
  const pool = opts.pool ?? createSweepPool(Math.min(opts.threads, order.length), opts.version);
  let next = 0;
  // A bounded number of tasks in flight: a sweep of 10^5 runs does not queue 10^5 tasks at once.
  const lane = async (): Promise<void> => {
    while (next < order.length && !signal?.aborted) {
      const run = order[next++]!;
      let outcome: RunOutcome;
      try {
        outcome = await pool.run(localTaskOf(plan, run));
      } catch (err) {
        if (signal?.aborted) return;
        outcome = {
          exit: 3,
          failed: {
            rapsim: plan.rapsim,
            scenario: plan.scenario,
            seed: run.seed,
            error: runError(err),
            replay: '',
          },
        };
      }
      outcomes[run.index] = outcome;
      opts.cache?.put(run, outcome);
      onOutcome?.(run, outcome);
    }
  };
  // Stopping terminates the threads, and with them the runs in flight: a long run does not make
  // Ctrl-C wait. (Aborting task by task instead makes piscina start replacement threads.)
  const stopped = new Promise<void>((resolve) =>
    signal?.addEventListener('abort', () => resolve(), { once: true }),
  );
  const destroyed = stopped.then(() => pool.destroy());
  try {
    await Promise.all(Array.from({ length: Math.min(order.length, 2 * opts.threads) }, lane));
  } finally {
    if (signal?.aborted) await destroyed;
    else await pool.destroy();
  }
  return outcomes;
}

/**
 * Starts the sweep threads before the sweep is planned, when planning cannot change how many it
 * needs: `runs` is a lower bound on the sweep's runs (the explicit seeds; every variant runs
 * each), and a sweep starts `min(threads, runs)` threads. A thread's start (its isolate, Node's
 * bootstrap, the simulator's modules) then overlaps the coordinator's planning (reading the
 * scenario, parsing and checking every variant, run ids) instead of following it. Undefined when
 * the bound is below `threads`: planning decides, and runLocal starts the threads afterwards.
 *
 * @example
 * const pool = startSweepThreads(2, 200, version); // before planSweep
 * await runLocal(plan, { threads: 2, version, pool });
 */
export function startSweepThreads(threads: number, runs: number, version: string): SweepPool | undefined {
  return runs >= threads ? createSweepPool(threads, version) : undefined;
}
