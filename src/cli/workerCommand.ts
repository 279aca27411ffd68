import { availableParallelism } from 'node:os';
import { checkRedis, queueNames, RedisUnreachable } from '../sweep/bullmqQueues.js';
import { parseInteger, parseTimeFlag, UsageError } from './flags.js';
import { resultsVersion } from './version.js';

/** Flags of `rapsim worker` as commander hands them over. */
export interface WorkerFlags {
  redis: string;
  concurrency?: string;
  lock: string;
  quiet?: boolean;
}

type Io = { out: NodeJS.WriteStream; err: NodeJS.WriteStream };

/**
 * `rapsim worker --redis URL [--concurrency N] [--lock TIME]`: takes the jobs of
 * `rapsim sweep --backend bullmq` (of this rapsim version) until SIGINT or SIGTERM, then
 * finishes the jobs in hand and exits 0. Logs one line per job on stdout.
 */
export async function workerCommand(flags: WorkerFlags, io: Io): Promise<number> {
  let concurrency: number;
  let lockMs: number;
  try {
    concurrency =
      flags.concurrency !== undefined
        ? parseInteger('--concurrency', flags.concurrency, 1)
        : availableParallelism();
    lockMs = Math.max(1, Math.round(parseTimeFlag('--lock', flags.lock) / 1e9));
    if (lockMs < 1000) throw new UsageError(`--lock: expected at least 1s, found "${flags.lock}".`);
    await checkRedis(flags.redis);
  } catch (err) {
    if (err instanceof UsageError || err instanceof RedisUnreachable) {
      io.err.write(`rapsim: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // A log piped into `head` or a closed terminal must not take the worker (and its jobs) down.
  io.out.on?.('error', () => undefined);
  const log = flags.quiet ? undefined : (line: string) => io.out.write(`${line}\n`);
  const { startWorker } = await import('../sweep/bullmqWorker.js');
  const version = resultsVersion();
  const worker = await startWorker({ redisUrl: flags.redis, version, concurrency, lockMs, log });
  const names = queueNames(version);
  log?.(
    `rapsim ${version} worker: ${concurrency} at a time, queues ${names.runs} and ${names.sweeps} on ${flags.redis}`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log?.(`${signal}: finishing the jobs in hand (send it again to quit at once)`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
  await worker.close();
  log?.('stopped');
  return 0;
}
