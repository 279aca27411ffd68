import { workerData } from 'node:worker_threads';
import { executeRun } from './runTask.js';
import type { LocalRunTask, RunOutcome } from './types.js';

/** What the pool hands every sweep thread: the version of the rapsim that started it. */
export interface SweepWorkerData {
  version: string;
}

/**
 * Piscina task of a sweep: one whole simulation per task, on this thread (see
 * {@link executeRun}). The local backend and `rapsim worker` both run their simulations here,
 * so the process's main thread stays free for progress, Ctrl-C and BullMQ lock renewals.
 */
export default function runSweepTask(task: LocalRunTask): Promise<RunOutcome> {
  return executeRun(task, (workerData as SweepWorkerData).version);
}
