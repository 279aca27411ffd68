import { createHash } from 'node:crypto';
import type { ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { SweepPlan } from './types.js';

/**
 * Names shared by the submitting `rapsim sweep --backend bullmq` and `rapsim worker`. Queues
 * carry the rapsim version: a worker only takes jobs planned by its own version, because
 * another version's results would not be the ones asked for.
 */

/** Key prefix of every rapsim key in Redis (BullMQ's default is `bull`). */
export const PREFIX = 'rapsim';

/** Job name of one simulation, and of the parent job that aggregates a sweep. */
export const RUN_JOB = 'run';
export const SWEEP_JOB = 'sweep';

/** The two queues of a version: one job per run, one parent job per sweep. */
export function queueNames(version: string): { runs: string; sweeps: string } {
  return { runs: `runs-${version}`, sweeps: `sweeps-${version}` };
}

/** The id of a sweep's parent job: a hash of the whole plan (file, text, variants, seeds, runs). */
export function sweepJobId(plan: SweepPlan): string {
  return `sweep-${createHash('sha256').update(JSON.stringify(plan)).digest('hex').slice(0, 40)}`;
}

/** BullMQ connection options for a `redis://` URL (blocking connections need no retry limit). */
export function connectionOf(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: null };
}

/** Redis could not be reached or the URL is not one: bad input, exit 2. */
export class RedisUnreachable extends Error {}

/**
 * Pings Redis once, failing within `timeoutMs` instead of retrying forever (ioredis's habit), so
 * that a wrong `--redis` is reported at once.
 *
 * @throws RedisUnreachable naming the URL and the reason
 */
export async function checkRedis(url: string, timeoutMs = 3000): Promise<void> {
  if (!/^rediss?:\/\//.test(url)) {
    throw new RedisUnreachable(`--redis: expected a redis://host:port URL, found "${url}".`);
  }
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new RedisUnreachable(`--redis ${url}: expected a reachable Redis server, found ${reason}.`);
  } finally {
    client.disconnect();
  }
}
