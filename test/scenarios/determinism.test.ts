import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { durationNs, rapsimJson, repoRoot } from '../helpers/cli.js';

/**
 * interface.md: "traceDigest, events, simulatedNs, violations and metrics must not depend on
 * --workers; only workers and wallMs may." Checked on every bundled scenario, and each one's digest
 * is pinned in golden-digests.json so that an unintended change of behaviour shows up. After an
 * intended change, regenerate with: UPDATE_GOLDEN=1 npx vitest run test/scenarios/determinism.test.ts
 */

const SCENARIOS_DIR = join(repoRoot, 'scenarios');
const GOLDEN_FILE = join(repoRoot, 'test', 'scenarios', 'golden-digests.json');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
/** Longer scenarios are cut to this to keep the suite fast (and the golden key says so). */
const MAX_UNTIL = '500us';
const MAX_UNTIL_NS = 500_000;
const WORKER_COUNTS = [1, 2, 4];

interface Bundled {
  /** Repository-relative, forward slashes: scenarios/x.yaml */
  file: string;
  /** Extra arguments (the --until cut, if any). */
  args: string[];
  /** The golden file's key: the file, plus @500us if it was cut. */
  key: string;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const path = join(dir, e.name);
      if (e.isDirectory()) return yamlFiles(path);
      return e.name.endsWith('.yaml') ? [path] : [];
    })
    .sort();
}

/** Every scenarios/**\/*.yaml except scenarios/bench/ and sweeps (`matrix:` or `seeds:`). */
function bundledScenarios(): Bundled[] {
  return yamlFiles(SCENARIOS_DIR).flatMap((abs) => {
    const file = relative(repoRoot, abs).split(sep).join('/');
    if (file.startsWith('scenarios/bench/')) return [];
    const doc = parse(readFileSync(abs, 'utf8')) as Record<string, unknown> | null;
    if (doc && typeof doc === 'object' && ('matrix' in doc || 'seeds' in doc)) return [];
    // The schema's default `until` is 2ms.
    const untilNs = durationNs(doc?.until ?? '2ms');
    return untilNs > MAX_UNTIL_NS
      ? [{ file, args: ['--until', MAX_UNTIL], key: `${file}@${MAX_UNTIL}` }]
      : [{ file, args: [], key: file }];
  });
}

function readGolden(): Record<string, string> {
  return existsSync(GOLDEN_FILE)
    ? (JSON.parse(readFileSync(GOLDEN_FILE, 'utf8')) as Record<string, string>)
    : {};
}

const scenarios = bundledScenarios();
const golden = readGolden();
const recorded: Record<string, string> = {};

/** Everything in the report that must not depend on --workers. */
function workerIndependent(report: Record<string, unknown>) {
  const { traceDigest, events, simulatedNs, violations, violationCounts, metrics } = report;
  return { traceDigest, events, simulatedNs, violations, violationCounts, metrics };
}

describe('bundled scenarios are deterministic across --workers and match their golden digests', () => {
  it('there are bundled scenarios to check', () => {
    expect(scenarios.length).toBeGreaterThan(0);
  });

  it.each(scenarios)('$key', async ({ file, args, key }) => {
    const runs = await Promise.all(
      WORKER_COUNTS.map((n) => rapsimJson(['run', file, ...args, '--workers', String(n)])),
    );
    runs.forEach((run, i) => {
      expect(run.code, `${file} --workers ${WORKER_COUNTS[i]}: its expect must be met\n${run.stderr}`).toBe(
        0,
      );
      expect(run.report.workers).toBe(WORKER_COUNTS[i]);
      expect(run.report.traceDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    });
    const [first, ...rest] = runs.map((r) => workerIndependent(r.report));
    for (const [i, other] of rest.entries()) {
      expect(other, `--workers ${WORKER_COUNTS[i + 1]} vs --workers ${WORKER_COUNTS[0]}`).toEqual(first);
    }
    const digest = first!.traceDigest as string;
    if (UPDATE) {
      recorded[key] = digest;
    } else {
      expect(
        golden[key],
        `${key}: traceDigest changed (or is new). If the change is intended, run UPDATE_GOLDEN=1 npx vitest run test/scenarios/determinism.test.ts`,
      ).toBe(digest);
    }
  });

  it.skipIf(UPDATE)('golden-digests.json lists exactly the bundled scenarios', () => {
    expect(Object.keys(golden).sort()).toEqual(scenarios.map((s) => s.key).sort());
  });

  afterAll(() => {
    if (!UPDATE) return;
    // Keep entries of scenarios that still exist but were filtered out of this run (-t), drop the rest.
    const keys = new Set(scenarios.map((s) => s.key));
    const merged: Record<string, string> = {};
    for (const key of [...keys].sort()) {
      const digest = recorded[key] ?? golden[key];
      if (digest) merged[key] = digest;
    }
    writeFileSync(GOLDEN_FILE, `${JSON.stringify(merged, null, 2)}\n`);
  });
});
