import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/scenario/load.js';

/** Every .yaml under scenarios/, recursively: the files users start from must always load. */
function scenarioFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return scenarioFiles(path);
    return entry.name.endsWith('.yaml') ? [path] : [];
  });
}

describe('bundled scenarios', () => {
  const files = scenarioFiles('scenarios');

  it('exist', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s loads', (file) => {
    expect(loadScenario(file).name).not.toBe('');
  });
});
