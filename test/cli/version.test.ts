import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeDigest, resultsVersion, version } from '../../src/cli/version.js';
import { tempDir } from '../helpers/cli.js';

/** A code tree with these files (path → content). */
function tree(files: Record<string, string>): string {
  const root = tempDir('code-');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('the version that labels results', () => {
  it('is the package version plus a digest of the code that runs', () => {
    expect(resultsVersion()).toMatch(
      new RegExp(`^${version.replaceAll('.', '\\.')}\\+build\\.[0-9a-f]{12}$`),
    );
    expect(resultsVersion()).toBe(resultsVersion());
  });

  it('changes with any script of the tree, and with nothing else', () => {
    const base = { 'hw/rap.js': 'export const a = 1;', 'cli/main.js': 'x', 'sweep/shim.mjs': 'y' };
    const digest = codeDigest(tree(base));
    // Same files written in another order: same digest.
    const reordered = Object.fromEntries(Object.entries(base).reverse());
    expect(codeDigest(tree(reordered))).toBe(digest);
    // One byte of the model: another version.
    expect(codeDigest(tree({ ...base, 'hw/rap.js': 'export const a = 2;' }))).not.toBe(digest);
    // A moved file: another version.
    const { 'hw/rap.js': rap, ...rest } = base;
    expect(codeDigest(tree({ ...rest, 'os/rap.js': rap }))).not.toBe(digest);
    // Maps, declarations and build info are not code that runs.
    const extras = { 'hw/rap.js.map': '{}', 'hw/rap.d.ts': 'declare const a: number;', '.tsbuildinfo': '{}' };
    expect(codeDigest(tree({ ...base, ...extras }))).toBe(digest);
  });
});
