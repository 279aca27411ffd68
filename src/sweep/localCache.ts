import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PlannedRun, RunOutcome } from './types.js';

/**
 * `rapsim sweep --cache DIR`: finished runs of the local backend kept as files, one per run id
 * (`DIR/<id>.json`), so that a sweep run again — with more seeds, another variant, another
 * spelling of the same runs — simulates only what it has not seen. The local counterpart of the
 * BullMQ backend's reuse of finished jobs.
 *
 * Safe to reuse because a run's id is a hash of everything its result depends on: the results
 * version (package version and a digest of the code), the scenario text, the sets, the seed and
 * `--until`. A file that cannot be read or parsed is ignored (the run is simulated again).
 *
 * Only simulations that ran to the end are kept, with or without violations. A crashed run is
 * simulated again: its error may be the thread's (out of memory, a killed thread), not the model's.
 */
export class LocalCache {
  /** Runs this sweep took from the cache. */
  hits = 0;
  /** The first write that failed (the sweep goes on; its runs are simply not kept). */
  writeError: string | undefined;

  /** Creates DIR if needed; throws if it cannot (bad input, before any run). */
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** The outcome of a run this cache holds, or undefined. */
  get(run: PlannedRun): RunOutcome | undefined {
    let text: string;
    try {
      text = readFileSync(this.file(run), 'utf8');
    } catch {
      return undefined;
    }
    let o: RunOutcome;
    try {
      o = JSON.parse(text) as RunOutcome;
    } catch {
      return undefined;
    }
    if ((o.exit !== 0 && o.exit !== 1) || typeof o.report?.traceDigest !== 'string') return undefined;
    this.hits++;
    return o;
  }

  /** Keeps a finished simulation (written whole or not at all: a temporary file, then a rename). */
  put(run: PlannedRun, outcome: RunOutcome): void {
    if (outcome.exit === 3) return;
    const tmp = `${this.file(run)}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(outcome));
      renameSync(tmp, this.file(run));
    } catch (err) {
      this.writeError ??= err instanceof Error ? err.message : String(err);
    }
  }

  private file(run: PlannedRun): string {
    return join(this.dir, `${run.id}.json`);
  }
}
