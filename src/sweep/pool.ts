import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { SweepWorkerData } from './sweepWorker.js';
import type { RunOutcome, RunTask } from './types.js';

/** The compiled worker, or under vitest (TypeScript sources) the shim that loads it through tsx. */
function sweepWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  return here.endsWith('.ts') ? resolve(dir, 'sweepWorker.shim.mjs') : resolve(dir, 'sweepWorker.js');
}

/** A pool of sweep threads: one simulation per task (see sweepWorker.ts). */
export type SweepPool = Piscina<RunTask, RunOutcome>;

/**
 * Starts `threads` sweep threads (min = max, so every thread is warm for the whole sweep).
 *
 * @example
 * const pool = createSweepPool(2, version);
 * const outcome = await pool.run(task);
 * await pool.destroy();
 */
export function createSweepPool(threads: number, version: string): SweepPool {
  const workerData: SweepWorkerData = { version };
  return new Piscina<RunTask, RunOutcome>({
    filename: sweepWorkerFile(),
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
    workerData,
  });
}
