import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultAssetsDir, hasTimeline, isLoopback, startViewServer, TIMELINE_FILE } from '../viz/server.js';

export interface ViewFlags {
  port?: string;
  host?: string;
}

type Io = { out: NodeJS.WritableStream; err: NodeJS.WritableStream };

/** The port `rapsim view` listens on unless told. */
export const DEFAULT_VIEW_PORT = 5178;

/**
 * `rapsim view [DIR] [--port N] [--host ADDR]`: serves the viewer over a run directory written by
 * `rapsim run --out DIR`, on 127.0.0.1 unless `--host` names another address explicitly, until
 * interrupted (Ctrl-C) or `stop` resolves. Returns the exit code (0 after a clean stop, 2 for bad
 * input, 3 when the page's assets are missing).
 */
export async function viewCommand(
  dirArg: string | undefined,
  flags: ViewFlags,
  io: Io,
  stop: Promise<unknown> = onSignal(),
): Promise<number> {
  const dir = resolve(dirArg ?? '.');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    io.err.write(
      `rapsim view: ${dirArg ?? '.'}: expected a directory written by \`rapsim run --out DIR\`, found ${existsSync(dir) ? 'a file' : 'nothing'}.\n`,
    );
    return 2;
  }
  if (!hasTimeline(dir)) {
    // A sweep's --out holds reports without traces: say how to get one of its runs on screen.
    const sweep = existsSync(join(dir, 'sweep.json'))
      ? ` It holds a sweep (sweep.json): run one of its replay commands with --out DIR, then view DIR.`
      : '';
    io.err.write(
      `rapsim view: ${dirArg ?? '.'}: expected a run directory with ${TIMELINE_FILE} (written by \`rapsim run SCENARIO --out DIR\`), found none.${sweep}\n`,
    );
    return 2;
  }
  let port = DEFAULT_VIEW_PORT;
  if (flags.port !== undefined) {
    port = Number(flags.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      io.err.write(`rapsim view: --port: expected an integer from 0 to 65535, found "${flags.port}".\n`);
      return 2;
    }
  }
  const host = flags.host ?? '127.0.0.1';
  if (flags.host !== undefined && !isLoopback(host)) {
    io.err.write(
      `rapsim view: warning: --host ${host} serves ${dir} beyond this machine; anyone who can reach ${host}:${port} can read the run.\n`,
    );
  }
  const assets = defaultAssetsDir();
  if (!existsSync(join(assets, 'index.html'))) {
    io.err.write(
      `rapsim view: internal error: the viewer's page is missing (${assets}); run \`npm run build\`.\n`,
    );
    return 3;
  }
  let server: Awaited<ReturnType<typeof startViewServer>>;
  try {
    server = await startViewServer({ dir, port, host, assetsDir: assets });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    io.err.write(
      `rapsim view: --port ${port} / --host ${host}: expected a free port on an address of this machine, found ${code}.\n`,
    );
    return 2;
  }
  io.out.write(`rapsim view: serving ${dir} at ${server.url} (Ctrl-C to stop)\n`);
  await stop;
  await server.close();
  return 0;
}

/** Resolves on the first SIGINT or SIGTERM. */
function onSignal(): Promise<string> {
  return new Promise((done) => {
    const handler = (sig: string): void => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      done(sig);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/** Adds `view` to the program (main.ts). */
export function registerViewCommand(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command('view')
    .description('serve a local web page (127.0.0.1) that replays a run written by `run --out DIR`')
    .argument('[dir]', 'run directory (default: the current directory)')
    .option('--port <n>', `port to listen on (default ${DEFAULT_VIEW_PORT}; 0 picks a free one)`)
    .option('--host <address>', 'address to bind (default 127.0.0.1; anything else must be asked for here)')
    .action(async (dir: string | undefined, flags: ViewFlags) => {
      setCode(await viewCommand(dir, flags, io));
    });
}
