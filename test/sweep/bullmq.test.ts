import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rapsim } from '../helpers/cli.js';
import { type Started, startRapsim, startRedis } from './processes.js';

/**
 * The distributed backend against a real Redis (issue 5): a private redis-server, two
 * `rapsim worker` processes, and `rapsim sweep --backend bullmq` compared byte for byte with
 * the local sweep.
 */

const STUDY = 'scenarios/sweeps/bare-metal-spec-x-stuffing.yaml';

const starts = (w: Started): string[] => [...w.output().matchAll(/^start (run-\w+)/gm)].map((m) => m[1]!);

describe('rapsim sweep --backend bullmq with rapsim workers', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const workers: Started[] = [];

  const startWorker = async (): Promise<Started> => {
    const w = startRapsim(['worker', '--redis', redis.url, '--concurrency', '1', '--lock', '3s'], 'worker');
    workers.push(w);
    await w.waitFor(/worker: 1 at a time/);
    return w;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis?.stop();
  });

  it('prints the same JSON as the local sweep, and a re-submission reuses every finished result', async () => {
    const args = [STUDY, '--seeds', '1..2', '--until', '10us', '--vary', 'hostProcesses.stuffing=auto,never'];
    const [local] = await Promise.all([rapsim(['sweep', ...args, '--json']), startWorker(), startWorker()]);
    const remote = await rapsim(['sweep', ...args, '--backend', 'bullmq', '--redis', redis.url, '--json']);
    expect(remote.code, remote.stderr).toBe(local.code);
    expect(remote.stdout).toBe(local.stdout);
    const [a, b] = workers;
    expect(starts(a!).length + starts(b!).length).toBe(16);
    expect(starts(a!).length).toBeGreaterThan(0);
    expect(starts(b!).length).toBeGreaterThan(0);
    expect(`${a!.output()}${b!.output()}`).toMatch(/^sweep sweep-\w+: 16 run\(s\) aggregated$/m);

    const again = await rapsim(['sweep', ...args, '--backend', 'bullmq', '--redis', redis.url]);
    expect(again.code).toBe(local.code);
    expect(again.stdout).toMatch(/^legacy\s+auto\s+2\s+2\s+rap-promised-clear 2\/2\s/m);
    expect(again.stdout).toContain(`rapsim run ${STUDY} --seed 2 --until 10us --set hardware.spec=legacy`);
    expect(starts(a!).length + starts(b!).length).toBe(16);

    // A larger sweep computes only what is new (seed 3) and reuses the rest.
    const larger = await rapsim([
      'sweep',
      ...args,
      '--seeds',
      '1..3',
      '--backend',
      'bullmq',
      '--redis',
      redis.url,
    ]);
    expect(larger.code).toBe(local.code);
    expect(larger.stderr).toMatch(/8 run job\(s\) queued, 16 finished result\(s\) reused/);
    expect(starts(a!).length + starts(b!).length).toBe(24);
  });

  it('loses nothing when a worker is killed mid-job: the job is retried by the other worker', async () => {
    const args = [
      STUDY,
      '--seeds',
      '5..5',
      '--until',
      '200us',
      '--vary',
      'hostProcesses.stuffing=auto,never',
    ];
    const [victim, survivor] = workers;
    const before = starts(victim!).length;
    const submitted = startRapsim(['sweep', ...args, '--backend', 'bullmq', '--redis', redis.url, '--json']);
    const local = rapsim(['sweep', ...args, '--threads', '1', '--json']);
    await victim!.waitFor(() => starts(victim!).length > before, 30_000);
    victim!.child.kill('SIGKILL');
    const killedJob = starts(victim!).at(-1)!;
    await survivor!.waitFor(new RegExp(`^start ${killedJob}`, 'm'), 30_000);
    const remoteCode = await submitted.closed;
    const reference = await local;
    expect(victim!.output()).not.toMatch(new RegExp(`^done  ${killedJob}`, 'm'));
    expect(remoteCode).toBe(reference.code);
    expect(submitted.output()).toBe(reference.stdout);
  });
});
