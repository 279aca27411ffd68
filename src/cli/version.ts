import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** rapsim's version, from package.json (two levels up from both src/cli and dist/cli). */
export const version: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

let cachedResultsVersion: string | undefined;

/**
 * The version that labels results — report `rapsim` fields, sweep plans, BullMQ queues and job
 * ids: the package version plus a digest of the code that runs (`0.1.0+build.3fa2b1c9e0a1`).
 *
 * The package version alone does not change between commits, so a re-submitted sweep would reuse
 * BullMQ results computed by older code, and workers built from different commits would mix
 * their results in one sweep, all silently. With the digest, a changed model is a new version:
 * its jobs get new ids and only workers running the same code take them.
 *
 * The digest covers every script of the tree this module was loaded from (`dist/` when built,
 * `src/` under tsx or vitest), by path and content. It is taken once per process, on first use
 * (≈ 20 ms), not at start: `--help` and `--version` do not pay for it.
 *
 * @example
 * resultsVersion() // '0.1.0+build.3fa2b1c9e0a1'
 */
export function resultsVersion(): string {
  cachedResultsVersion ??= `${version}+build.${codeDigest(fileURLToPath(new URL('..', import.meta.url)))}`;
  return cachedResultsVersion;
}

/** sha256 of every script below `root` (path and content, in path order), first 12 hex digits. */
export function codeDigest(root: string): string {
  // Paths with '/' on every OS, so that workers on different systems agree.
  const files = (readdirSync(root, { recursive: true }) as string[])
    .map((f) => f.replaceAll('\\', '/'))
    .filter((f) => /\.(js|mjs|ts)$/.test(f) && !f.endsWith('.d.ts'))
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(f)
      .update('\0')
      .update(readFileSync(`${root}/${f}`))
      .update('\0');
  return hash.digest('hex').slice(0, 12);
}
