import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenarioText } from '../../src/scenario/load.js';
import { localTaskOf, taskOf } from '../../src/sweep/localBackend.js';
import { parsedVariant, parseVary, planSweep } from '../../src/sweep/plan.js';
import { executeRun } from '../../src/sweep/runTask.js';
import { repoRoot } from '../helpers/cli.js';

const V = '0.0.0-test';
const LITMUS = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
const text = readFileSync(join(repoRoot, LITMUS), 'utf8');

function plan() {
  return planSweep({
    rapsim: V,
    file: LITMUS,
    text,
    sets: ['hostProcesses.callDepth=44'],
    vary: [parseVary('hardware.spec=legacy,eraps-amd')],
    seeds: [1, 2],
    replayOf: () => '',
  });
}

describe('tasks of the embedded backend', () => {
  it('carry each variant as planning parsed it: what the thread would parse from the text', () => {
    const p = plan();
    for (const run of p.runs) {
      const task = localTaskOf(p, run);
      expect(task).toMatchObject(taskOf(p, run));
      expect(task.scenario).toEqual(parseScenarioText(text, LITMUS, { sets: run.sets }));
    }
  });

  it('run to the same outcome with the parsed scenario as with the text alone (a BullMQ job)', async () => {
    const p = plan();
    for (const run of p.runs) {
      const parsed = await executeRun(localTaskOf(p, run), V);
      const fromText = await executeRun(taskOf(p, run), V);
      expect(parsed).toEqual(fromText);
    }
  });

  it('carry text only for a plan that came from elsewhere (as a BullMQ job carries it)', () => {
    const p = JSON.parse(JSON.stringify(plan()));
    expect(parsedVariant(p, 0)).toBeUndefined();
    expect(localTaskOf(p, p.runs[0]).scenario).toBeUndefined();
  });
});

/** Relative modules a TypeScript source imports at run time (not `import type`), and packages. */
function runtimeImports(file: string): { local: string[]; packages: string[] } {
  const src = readFileSync(file, 'utf8');
  const local: string[] = [];
  const packages: string[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'/gm)) {
    if (m[1]) continue;
    const spec = m[2]!;
    if (spec.startsWith('.')) local.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    else packages.push(spec);
  }
  return { local, packages };
}

describe('a sweep thread', () => {
  it('loads neither the scenario parser (YAML, zod) nor piscina when it starts', () => {
    // They are most of a thread's start-up (about 200 ms here) and a thread of the embedded
    // backend needs none of them: its tasks carry parsed scenarios and it runs in-process.
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const { local, packages: p } = runtimeImports(file);
      for (const x of p) packages.add(x);
      for (const x of local) visit(x);
    };
    visit(join(repoRoot, 'src/sweep/sweepWorker.ts'));
    expect(seen.size).toBeGreaterThan(10);
    expect([...packages].filter((p) => /^(yaml|zod|piscina)(\/|$)/.test(p))).toEqual([]);
    expect([...seen].filter((f) => f.includes('/src/scenario/'))).toEqual([]);
  });
});
