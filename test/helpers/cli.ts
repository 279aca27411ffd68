import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/cli.ts). */
export const repoRoot: string = fileURLToPath(new URL('../../', import.meta.url));

const BIN = join(repoRoot, 'bin', 'rapsim.js');
const COMPILED_MAIN = join(repoRoot, 'dist', 'cli', 'main.js');

/** What one `rapsim` process did. `code` is null only if it was killed (e.g. by the timeout). */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Milliseconds before the child is killed; 60 s unless told. */
  timeoutMs?: number;
  /** Extra environment variables (on top of the inherited ones and CI=true). */
  env?: Record<string, string>;
}

/**
 * These tests exercise the published entry point, which runs the compiled CLI. `npm test` builds
 * first; a bare `npx vitest run` does not, so say so clearly instead of failing on an import error.
 */
export function assertBuilt(): void {
  if (!existsSync(COMPILED_MAIN)) {
    throw new Error(
      `rapsim CLI tests need the compiled CLI, but ${COMPILED_MAIN} is missing: run \`npm run build\` first (\`npm test\` does it for you).`,
    );
  }
}

/**
 * Runs `node bin/rapsim.js ...args` in the repository root with CI=true and returns its exit code
 * and output. Never rejects for a non-zero exit: the exit code is part of what the tests check.
 */
export function rapsim(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, CI: 'true', ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 256 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (error && typeof (error as NodeJS.ErrnoException).code === 'string') {
          // The child could not be started at all (ENOENT, EACCES, maxBuffer...): not a CLI result.
          reject(error);
          return;
        }
        const code = error ? ((error as { code?: number | null }).code ?? null) : 0;
        const signal = error ? ((error as { signal?: NodeJS.Signals | null }).signal ?? null) : null;
        resolve({ code: typeof code === 'number' ? code : null, signal, stdout, stderr });
      },
    );
  });
}

/** Runs rapsim with `--json` appended and parses the whole of stdout as one JSON document. */
export async function rapsimJson(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliResult & { report: Record<string, unknown> }> {
  const result = await rapsim([...args, '--json'], options);
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(result.stdout) as Record<string, unknown>;
  } catch (err) {
    throw new Error(
      `rapsim ${args.join(' ')} --json (exit ${result.code}) did not print one JSON document on stdout: ${
        (err as Error).message
      }\n--- stdout ---\n${result.stdout.slice(0, 2000)}\n--- stderr ---\n${result.stderr.slice(0, 2000)}`,
    );
  }
  return { ...result, report };
}

/** A fresh temporary directory under os.tmpdir(). */
export function tempDir(prefix = 'rapsim-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `text` as `<name>` into a fresh temporary directory and returns its absolute path. */
export function writeTempScenario(name: string, text: string): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text);
  return file;
}

/** Splits a printed shell command line (words, optionally single-quoted as replay lines quote them). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g;
  for (const m of line.matchAll(re)) {
    words.push(m[1] !== undefined ? m[1].replaceAll(`'\\''`, `'`) : (m[2] ?? ''));
  }
  return words;
}

const UNIT_NS: Record<string, number> = { ps: 1e-3, ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 };

/**
 * A scenario time (`250ns`, `3us`, `2ms`, `1s`, or an integer in the kernel's unit, picoseconds)
 * in nanoseconds; only used to decide which bundled scenarios to shorten.
 */
export function durationNs(value: unknown): number {
  if (typeof value === 'number') return value / 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ps|ns|us|µs|ms|s)?\s*$/.exec(String(value));
  if (!m) throw new Error(`not a duration: ${String(value)}`);
  return Number(m[1]) * (UNIT_NS[m[2] ?? 'ps'] ?? 1e-3);
}
