import { DelayedError, Job, Queue, Worker } from 'bullmq';
import { assemble } from './aggregate.js';
import type { SweepJobData } from './bullmqBackend.js';
import { jobOutcome } from './bullmqOutcome.js';
import { connectionOf, PREFIX, queueNames } from './bullmqQueues.js';
import { createSweepPool } from './pool.js';
import type { RunOutcome, RunTask, SweepDocument } from './types.js';

/** How long an aggregating parent waits before it looks again at runs another sweep owns. */
const FOREIGN_RUN_RECHECK_MS = 1000;

export interface WorkerOptions {
  redisUrl: string;
  version: string;
  /** Simulations at a time: threads of the sweep pool, and jobs taken at a time. */
  concurrency: number;
  /**
   * Milliseconds a job stays claimed by its worker without a renewal; a worker that dies loses
   * its claim after that and the job is taken by another (BullMQ's stalled-job check).
   */
  lockMs: number;
  log?: (line: string) => void;
}

export interface RunningWorker {
  /** Finishes the jobs in hand, then stops taking jobs and closes the threads. */
  close(): Promise<void>;
}

/**
 * `rapsim worker`: takes run jobs of its rapsim version from Redis and simulates each on a
 * sweep thread (so that this thread stays free to renew the jobs' locks), and aggregates the
 * parent job of every sweep whose runs have all finished.
 *
 * @example
 * const w = await startWorker({ redisUrl, version, concurrency: 2, lockMs: 30_000, log: console.log });
 * process.once('SIGTERM', () => w.close());
 */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const names = queueNames(o.version);
  const connection = connectionOf(o.redisUrl);
  const pool = createSweepPool(o.concurrency, o.version);
  const runsQueue = new Queue(names.runs, { connection, prefix: PREFIX });
  const common = {
    connection,
    prefix: PREFIX,
    lockDuration: o.lockMs,
    stalledInterval: o.lockMs,
    maxStalledCount: 2,
  };
  const runs = new Worker<RunTask, RunOutcome>(
    names.runs,
    async (job) => {
      o.log?.(`start ${job.id} seed ${job.data.seed} ${job.data.sets.join(' ')}`.trimEnd());
      const outcome = await pool.run(job.data);
      o.log?.(`done  ${job.id} exit ${outcome.exit}`);
      return outcome;
    },
    { ...common, concurrency: o.concurrency },
  );
  const sweeps = new Worker<SweepJobData, SweepDocument>(
    names.sweeps,
    (job, token) => aggregateSweep(job, token, runsQueue, o.log),
    { ...common, concurrency: 1 },
  );
  for (const w of [runs, sweeps]) {
    w.on('error', (err) => o.log?.(`error ${err.message}`));
    w.on('failed', (job, err) => o.log?.(`failed ${job?.id ?? '?'}: ${err.message}`));
  }
  await Promise.all([runs.waitUntilReady(), sweeps.waitUntilReady()]);
  return {
    async close() {
      await Promise.allSettled([runs.close(), sweeps.close()]);
      await Promise.allSettled([runsQueue.close(), pool.destroy()]);
    },
  };
}

/**
 * The parent job's work: the sweep document from the outcomes of all its runs — children and
 * runs reused from earlier sweeps alike. A run that is still pending (owned by another sweep
 * that has not finished it) sends the parent back to wait a moment.
 */
async function aggregateSweep(
  job: Job<SweepJobData, SweepDocument>,
  token: string | undefined,
  runsQueue: Queue,
  log: ((line: string) => void) | undefined,
): Promise<SweepDocument> {
  const { plan } = job.data;
  const outcomes: (RunOutcome | undefined)[] = [];
  for (const run of plan.runs) {
    const child = await Job.fromId(runsQueue, run.id);
    const outcome = child ? await jobOutcome(child, plan) : undefined;
    if (child && !outcome) {
      await job.moveToDelayed(Date.now() + FOREIGN_RUN_RECHECK_MS, token);
      throw new DelayedError();
    }
    outcomes.push(
      outcome ?? {
        exit: 3,
        failed: {
          rapsim: plan.rapsim,
          scenario: plan.scenario,
          seed: run.seed,
          error: { kind: 'internal', message: `BullMQ job ${run.id} is gone from Redis` },
          replay: '',
        },
      },
    );
  }
  log?.(`sweep ${job.id}: ${plan.runs.length} run(s) aggregated`);
  return assemble(plan, outcomes, { interrupted: false });
}
