import type { Job } from 'bullmq';
import type { RunOutcome, SweepPlan } from './types.js';

/**
 * What a run job stands for now: its outcome when it completed; a failed run (exit 3) when
 * BullMQ gave up on it (its attempts are spent, e.g. every worker that took it died); undefined
 * while it is waiting, running or being retried. A crashed *simulation* is not a failed job — it
 * completes with a failed-run outcome, like any other result.
 */
export async function jobOutcome(job: Job, plan: SweepPlan): Promise<RunOutcome | undefined> {
  const state = await job.getState();
  if (state === 'completed') return job.returnvalue as RunOutcome;
  if (state !== 'failed') return undefined;
  const data = job.data as { seed?: number };
  return {
    exit: 3,
    failed: {
      rapsim: plan.rapsim,
      scenario: plan.scenario,
      seed: data.seed ?? 0,
      error: {
        kind: 'internal',
        message: `BullMQ job ${job.id} failed after ${job.attemptsMade} attempt(s): ${job.failedReason}`,
      },
      replay: '',
    },
  };
}
