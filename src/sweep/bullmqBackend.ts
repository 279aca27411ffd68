import { setTimeout as sleep } from 'node:timers/promises';
import { type FlowJobNode, FlowProducer, Job, Queue, QueueEvents } from 'bullmq';
import { jobOutcome } from './bullmqOutcome.js';
import { connectionOf, PREFIX, queueNames, RUN_JOB, SWEEP_JOB, sweepJobId } from './bullmqQueues.js';
import { type SweepHooks, taskOf } from './localBackend.js';
import type { PlannedRun, RunOutcome, SweepDocument, SweepPlan } from './types.js';

/** Attempts of a run job whose processing failed (not a crashed simulation: that is a result). */
const RUN_ATTEMPTS = 3;
/** How often the submitter looks at the parent job, and re-reads runs it has no event for. */
const POLL_MS = 250;
const RECONCILE_EVERY = 20;

export interface BullmqOptions {
  redisUrl: string;
  /** One-line notes for the user (what was reused, what was queued). */
  note?: (text: string) => void;
}

/** Data of a sweep's parent job: the plan, so that any worker can aggregate it. */
export interface SweepJobData {
  plan: SweepPlan;
}

/**
 * The distributed backend: one BullMQ job per run (id: {@link PlannedRun.id}, a hash of what it
 * computes) under a parent flow job per sweep (id: a hash of the plan) that a `rapsim worker`
 * aggregates into the sweep document once every run has finished. Runs that already have a job
 * are not queued again — a finished one is reused, an unfinished one (another sweep's) waited
 * for — so re-submitting a sweep, or a larger one, recomputes nothing. Progress comes from the
 * runs queue's events. Stopping (the signal) leaves the jobs to the workers: a re-submission
 * picks them up.
 *
 * @returns the outcomes that arrived (indexed like `plan.runs`) and, when the sweep finished,
 *   the parent job's document
 */
export async function runOnBullmq(
  plan: SweepPlan,
  opts: BullmqOptions,
  hooks: SweepHooks = {},
): Promise<{ outcomes: (RunOutcome | undefined)[]; document?: SweepDocument }> {
  const names = queueNames(plan.rapsim);
  const connection = connectionOf(opts.redisUrl);
  const runsQueue = new Queue(names.runs, { connection, prefix: PREFIX });
  const sweepsQueue = new Queue(names.sweeps, { connection, prefix: PREFIX });
  const events = new QueueEvents(names.runs, { connection, prefix: PREFIX });
  const flow = new FlowProducer({ connection, prefix: PREFIX });
  const tracker = new Tracker(plan, hooks);
  events.on('completed', ({ jobId, returnvalue }) => {
    tracker.record(jobId, returnvalue as unknown as RunOutcome);
  });
  try {
    await events.waitUntilReady();
    const parentId = sweepJobId(plan);
    let parent = await Job.fromId<SweepJobData, SweepDocument>(sweepsQueue, parentId);
    if (!parent) {
      await submit(plan, parentId, { runsQueue, flow, tracker, note: opts.note });
    } else {
      if ((await parent.getState()) === 'failed') await parent.retry('failed');
      opts.note?.(`rapsim: sweep ${parentId} is already in Redis; waiting for its results`);
    }
    // Workers take only jobs of their own version (package version and code digest): say so when
    // none is listening, rather than wait without a word for workers running other code.
    if ((await runsQueue.getWorkersCount()) === 0) {
      opts.note?.(
        `rapsim: no worker is listening for rapsim ${plan.rapsim} yet; start \`rapsim worker --redis URL\` from this same build (workers of other code take other queues)`,
      );
    }
    for (let tick = 1; !hooks.signal?.aborted; tick++) {
      parent = await Job.fromId<SweepJobData, SweepDocument>(sweepsQueue, parentId);
      const state = parent ? await parent.getState() : 'missing';
      if (state === 'completed' && parent) {
        await tracker.reconcile(runsQueue);
        return { outcomes: tracker.outcomes, document: parent.returnvalue };
      }
      if (state === 'failed' || state === 'missing') {
        throw new Error(`the sweep's parent job ${parentId} is ${state}: ${parent?.failedReason ?? ''}`);
      }
      if (tick % RECONCILE_EVERY === 0) await tracker.reconcile(runsQueue);
      await sleep(POLL_MS, undefined, hooks.signal ? { signal: hooks.signal } : {}).catch(() => undefined);
    }
    return { outcomes: tracker.outcomes };
  } finally {
    await Promise.allSettled([events.close(), flow.close(), runsQueue.close(), sweepsQueue.close()]);
  }
}

/**
 * Queues the runs that have no job yet as children of the parent job. Runs that already have a
 * job are reused (finished), retried (failed) or waited for (queued or running elsewhere).
 */
async function submit(
  plan: SweepPlan,
  parentId: string,
  ctx: { runsQueue: Queue; flow: FlowProducer; tracker: Tracker; note?: ((t: string) => void) | undefined },
): Promise<void> {
  const names = queueNames(plan.rapsim);
  const byId = new Map<string, PlannedRun>();
  for (const run of plan.runs) if (!byId.has(run.id)) byId.set(run.id, run);
  // Another submitter may create a run between our look and our add: look again, then add again.
  for (let attempt = 1; ; attempt++) {
    const fresh: PlannedRun[] = [];
    let reused = 0;
    let waiting = 0;
    for (const [id, run] of byId) {
      const job = await Job.fromId<unknown, RunOutcome>(ctx.runsQueue, id);
      if (!job) fresh.push(run);
      else {
        const state = await job.getState();
        if (state === 'completed') {
          ctx.tracker.record(id, job.returnvalue);
          reused++;
        } else {
          if (state === 'failed') await job.retry('failed');
          waiting++;
        }
      }
    }
    const children: FlowJobNode[] = fresh.map((run) => ({
      name: RUN_JOB,
      queueName: names.runs,
      data: taskOf(plan, run),
      opts: {
        jobId: run.id,
        attempts: RUN_ATTEMPTS,
        backoff: { type: 'fixed', delay: 1000 },
        ignoreDependencyOnFailure: true,
      },
    }));
    try {
      await ctx.flow.add({
        name: SWEEP_JOB,
        queueName: names.sweeps,
        data: { plan } satisfies SweepJobData,
        opts: { jobId: parentId, attempts: RUN_ATTEMPTS, backoff: { type: 'fixed', delay: 1000 } },
        children,
      });
      ctx.note?.(
        `rapsim: sweep ${parentId}: ${fresh.length} run job(s) queued, ${reused} finished result(s) reused, ${waiting} run(s) already queued by another sweep`,
      );
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

/** The outcomes that arrived, reported to the hooks once per run. */
class Tracker {
  readonly outcomes: (RunOutcome | undefined)[];
  private readonly runsOf = new Map<string, PlannedRun[]>();

  constructor(
    private readonly plan: SweepPlan,
    private readonly hooks: SweepHooks,
  ) {
    this.outcomes = new Array(plan.runs.length);
    for (const run of plan.runs) {
      const list = this.runsOf.get(run.id) ?? [];
      list.push(run);
      this.runsOf.set(run.id, list);
    }
  }

  record(id: string, outcome: RunOutcome | undefined): void {
    if (!outcome) return;
    for (const run of this.runsOf.get(id) ?? []) {
      if (this.outcomes[run.index]) continue;
      this.outcomes[run.index] = outcome;
      this.hooks.onOutcome?.(run, outcome);
    }
  }

  /** Reads the runs no event has told us about yet (events are not replayed after a reconnect). */
  async reconcile(runsQueue: Queue): Promise<void> {
    for (const [id, runs] of this.runsOf) {
      if (runs.every((r) => this.outcomes[r.index])) continue;
      const job = await Job.fromId<unknown, RunOutcome>(runsQueue, id);
      const outcome = job ? await jobOutcome(job, this.plan) : undefined;
      if (outcome) this.record(id, outcome);
    }
  }
}
