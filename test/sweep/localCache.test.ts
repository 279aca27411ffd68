import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../src/sweep/localBackend.js';
import { LocalCache } from '../../src/sweep/localCache.js';
import { parseVary, planSweep } from '../../src/sweep/plan.js';
import type { RunOutcome } from '../../src/sweep/types.js';
import { repoRoot, tempDir } from '../helpers/cli.js';

const V = '0.0.0-test';
const LITMUS = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
const text = readFileSync(resolve(repoRoot, LITMUS), 'utf8');

function plan(seeds: number[]) {
  return planSweep({
    rapsim: V,
    file: LITMUS,
    text,
    sets: [],
    vary: [parseVary('hardware.spec=legacy,eraps-amd')],
    seeds,
    replayOf: () => '',
  });
}

describe('--cache (LocalCache)', () => {
  it('keeps finished runs and gives them back: a larger sweep simulates only the new runs', async () => {
    const dir = tempDir('cache-');
    const first = new LocalCache(dir);
    const small = await runLocal(plan([1, 2]), { threads: 2, version: V, cache: first });
    expect(first.hits).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toHaveLength(4);

    const second = new LocalCache(dir);
    const simulated: number[] = [];
    const larger = plan([1, 2, 3]);
    const both = await runLocal(
      larger,
      { threads: 2, version: V, cache: second },
      { onOutcome: (run) => simulated.push(run.index) },
    );
    expect(second.hits).toBe(4);
    expect(simulated).toHaveLength(6); // every run reported, the kept ones included
    // The same outcomes as simulating: seeds 1 and 2 as before, and a fresh sweep agrees on all.
    const fresh = await runLocal(larger, { threads: 2, version: V });
    expect(JSON.stringify(both)).toBe(JSON.stringify(fresh));
    const byKey = (p: ReturnType<typeof plan>, o: (RunOutcome | undefined)[]) =>
      new Map(p.runs.map((r) => [`${r.variant}/${r.seed}`, JSON.stringify(o[r.index])]));
    const before = byKey(plan([1, 2]), small);
    const after = byKey(larger, both);
    for (const [k, v] of before) expect(after.get(k)).toBe(v);
  });

  it('ignores what it cannot read, and never keeps a crashed run', () => {
    const dir = tempDir('cache-');
    const cache = new LocalCache(dir);
    const [run, other] = plan([1]).runs;
    writeFileSync(join(dir, `${run!.id}.json`), '{ not json');
    expect(cache.get(run!)).toBeUndefined();
    const crashed: RunOutcome = {
      exit: 3,
      failed: { rapsim: V, scenario: 's', seed: 1, error: { kind: 'internal', message: 'x' }, replay: '' },
    };
    cache.put(other!, crashed);
    expect(cache.get(other!)).toBeUndefined();
    expect(cache.hits).toBe(0);
  });

  it('reports a write it could not make, and the sweep goes on', () => {
    const dir = tempDir('cache-');
    const cache = new LocalCache(dir);
    const [run] = plan([1]).runs;
    // A directory where the run's file should go: the rename fails.
    const target = join(dir, `${run!.id}.json`);
    new LocalCache(target);
    cache.put(run!, { exit: 0, report: { traceDigest: 'sha256:x' } as never });
    expect(cache.writeError).toMatch(/EISDIR|ENOTEMPTY|EEXIST|directory/i);
  });
});
