import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { SweepWorkerData } from './sweepWorker.js';
import type { LocalRunTask, RunOutcome } from './types.js';

/** The compiled worker, or under vitest (TypeScript sources) the shim that loads it through tsx. */
function sweepWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  return here.endsWith('.ts') ? resolve(dir, 'sweepWorker.shim.mjs') : resolve(dir, 'sweepWorker.js');
}

/** A pool of sweep threads: one simulation per task (see sweepWorker.ts). */
export type SweepPool = Piscina<LocalRunTask, RunOutcome>;

/**
 * Starts `threads` sweep threads (min = max, so every thread is warm for the whole sweep).
 *
 * Two tasks per thread: the next run waits in the thread's own queue, so a thread starts it the
 * moment the previous one ends instead of idling through a round trip to the main thread (its
 * reply, the main thread waking, the next post). On this 2-core VM that round trip cost about
 * 0.2 ms per run, a fifth of a short run. The price is at the very end of a sweep: a run queued
 * behind a long one can wait while another thread is already idle.
 *
 * @example
 * const pool = createSweepPool(2, version);
 * const outcome = await pool.run(task);
 * await pool.destroy();
 */
export function createSweepPool(threads: number, version: string): SweepPool {
  const workerData: SweepWorkerData = { version };
  return new Piscina<LocalRunTask, RunOutcome>({
    filename: sweepWorkerFile(),
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: 2,
    idleTimeout: 60_000,
    workerData,
  });
}
