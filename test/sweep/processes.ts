import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertBuilt, repoRoot } from '../helpers/cli.js';

/** A child process we started, with what it printed so far. */
export interface Started {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches `re` or satisfies it (rejects after `timeoutMs`). */
  waitFor(re: RegExp | ((output: string) => boolean), timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code once the process has exited and its output is read. */
  closed: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

function track(child: ChildProcess, name: string): Started {
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit');
  const closed = once(child, 'close').then(() => child.exitCode);
  return {
    child,
    closed,
    output: () => text,
    waitFor(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!(typeof re === 'function' ? re(text) : re.test(text))) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `${name}: no ${String(re)} within ${timeoutMs} ms; output so far:\n${text.slice(-2000)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A TCP port on the loopback interface that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * A private redis-server (Debian's package; `.ci/run` installs it) on a random loopback port, in
 * a temporary directory, persisting nothing. Never a system service: the tests stop it.
 */
export async function startRedis(): Promise<Started & { url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rapsim-redis-'));
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const failed = once(child, 'error').then(([err]) => {
    throw new Error(
      `cannot start redis-server (${(err as NodeJS.ErrnoException).code}): the BullMQ tests need Debian's redis-server — \`apt-get install -y redis-server\` (.ci/run does it)`,
    );
  });
  const started = track(child, 'redis-server');
  await Promise.race([started.waitFor(/Ready to accept connections/, 10_000), failed]);
  return {
    ...started,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await started.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts `node bin/rapsim.js ...args` (the compiled CLI) in the repository root. */
export function startRapsim(args: readonly string[], name = `rapsim ${args[0]}`): Started {
  assertBuilt();
  const child = spawn(process.execPath, ['bin/rapsim.js', ...args], {
    cwd: repoRoot,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, name);
}
