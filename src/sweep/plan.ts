import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { ScenarioError, showFound } from '../scenario/errors.js';
import { parseScenarioText } from '../scenario/load.js';
import { parseOverride } from '../scenario/overrides.js';
import type { Scenario } from '../scenario/schema.js';
import { firstRepeated, type MatrixValue } from '../scenario/sweep.js';
import { deepFreeze } from './freeze.js';
import type { PlannedRun, SweepPlan, VariantSet } from './types.js';

/**
 * Upper bound on the runs of one sweep ("put a limit on everything", docs/style.md): every report
 * is kept until the document is printed, a few KB each.
 */
export const MAX_RUNS = 100_000;

/** One `--vary key=v1,v2`, read. */
export interface Vary {
  key: string;
  values: MatrixValue[];
}

/**
 * Reads `--vary key=v1,v2,...`: each value is a YAML scalar, exactly as `--set key=value` reads it.
 *
 * @throws ScenarioError (file `--vary`) for a missing key or value
 * @example
 * parseVary('hardware.spec=legacy,eraps-amd') // { key: 'hardware.spec', values: ['legacy', 'eraps-amd'] }
 * parseVary('hardware.rapEntries=32,64').values // [32, 64]
 */
export function parseVary(arg: string): Vary {
  const eq = arg.indexOf('=');
  const bad = (expected: string) =>
    new ScenarioError({ file: '--vary', path: '', expected, found: JSON.stringify(arg) });
  if (eq < 0) throw bad('key=v1,v2,... with a dotted key');
  const key = arg.slice(0, eq).trim();
  const texts = arg.slice(eq + 1).split(',');
  if (texts.some((t) => t.trim() === '')) throw bad('a comma-separated list of non-empty values');
  const values = texts.map((t) => {
    const o = parseOverride(`${key}=${t}`);
    if (o.value === null || typeof o.value === 'object')
      throw bad(`scalar values (found ${JSON.stringify(t)})`);
    return o.value as MatrixValue;
  });
  // As in a matrix: a value twice would run its variants twice and count them twice.
  const twice = firstRepeated(values);
  if (twice !== undefined) throw bad(`each value once (found ${JSON.stringify(twice)} twice)`);
  return { key: parseOverride(`${key}=x`).path.join('.'), values };
}

/**
 * `key=value` that `--set` reads back as exactly `value` (a string that looks like a number is
 * quoted, so `"8"` stays a string).
 *
 * @example
 * formatSet('hardware.spec', 'legacy') // 'hardware.spec=legacy'
 * formatSet('name', '8') // 'name="8"'
 */
export function formatSet(key: string, value: MatrixValue): string {
  return `${key}=${stringify(value, { lineWidth: 0 }).trimEnd()}`;
}

/**
 * A run's deterministic id: what it computes, and nothing about where it was asked from (file
 * path, variant position), so the same simulation asked by two sweeps has the same id.
 */
export function runId(o: {
  rapsim: string;
  text: string;
  sets: readonly string[];
  seed: number;
  untilPs?: number | undefined;
}): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([o.rapsim, o.text, o.sets, o.seed, o.untilPs ?? null]));
  return `run-${h.digest('hex').slice(0, 40)}`;
}

export interface PlanInput {
  rapsim: string;
  file: string;
  text: string;
  /** The user's `--set` arguments (applied to every run, before the variant's). */
  sets: readonly string[];
  /** `--vary` arguments, read: they extend the scenario's `matrix:` (a key in both: `--vary` wins). */
  vary: readonly Vary[];
  /** `--seeds` (or `run --seed N`); otherwise the scenario's `seeds:`, otherwise its `seed`. */
  seeds?: number[] | undefined;
  until?: { text: string; ps: number } | undefined;
  /** The replay command of one run (the CLI knows how to spell it). */
  replayOf: (o: { seed: number; sets: readonly string[] }) => string;
  /** Extra checks of every variant before anything runs (e.g. features not modelled yet). */
  check?: (scenario: Scenario) => void;
}

/**
 * The keys a sweep varies: the scenario's `matrix:` minus keys the user pinned with `--set`,
 * then `--vary` (replacing a matrix key's values in place, or appended).
 */
export function variedKeys(scenario: Scenario, sets: readonly string[], vary: readonly Vary[]) {
  const pinned = new Set(sets.map((s) => parseOverride(s).path.join('.')));
  const out: Record<string, MatrixValue[]> = {};
  const origin: Record<string, 'matrix' | 'vary'> = {};
  for (const [key, values] of Object.entries(scenario.matrix ?? {})) {
    if (pinned.has(key)) continue;
    out[key] = values;
    origin[key] = 'matrix';
  }
  for (const v of vary) {
    // A --set of the key would be silently overridden by every variant.
    if (pinned.has(v.key)) {
      throw new ScenarioError({
        file: '--vary',
        path: v.key,
        expected: 'a key that no --set pins (--set gives it one value, --vary a list: give one of them)',
        found: `--set ${sets.find((s) => parseOverride(s).path.join('.') === v.key)}`,
      });
    }
    // A second --vary of a key would silently replace the first one's values.
    if (origin[v.key] === 'vary') {
      throw new ScenarioError({
        file: '--vary',
        path: v.key,
        expected: `one --vary per key, with all its values (--vary ${v.key}=v1,v2,...)`,
        found: 'a second --vary of it',
      });
    }
    out[v.key] = v.values;
    origin[v.key] = 'vary';
  }
  return { vary: out, origin };
}

/**
 * Whether `rapsim run` on this scenario is a sweep: it has a `matrix:` key the user did not pin
 * with `--set`, or `seeds:` and no `--seed`.
 */
export function runIsSweep(scenario: Scenario, sets: readonly string[], seedGiven: boolean): boolean {
  if (scenario.seeds !== undefined && !seedGiven) return true;
  return Object.keys(variedKeys(scenario, sets, []).vary).length > 0;
}

/** The cross product of the values, first key slowest. */
function crossProduct(vary: Record<string, MatrixValue[]>): VariantSet[] {
  let out: VariantSet[] = [{}];
  for (const [key, values] of Object.entries(vary)) {
    out = out.flatMap((partial) => values.map((v) => ({ ...partial, [key]: v })));
  }
  return out;
}

/**
 * Every plan's variants as {@link planSweep} parsed them, by variant index. Kept beside the plan,
 * not in it: the plan is the plain data that travels (and is hashed) in BullMQ jobs, while these
 * only spare the embedded backend's threads a parse of their own.
 */
const parsedVariants = new WeakMap<SweepPlan, readonly Scenario[]>();

/**
 * The scenario of a variant of a plan made by {@link planSweep} in this process, exactly as a
 * sweep thread would parse it from the plan's text and the run's sets; undefined for a plan that
 * came from elsewhere.
 */
export function parsedVariant(plan: SweepPlan, variant: number): Scenario | undefined {
  return parsedVariants.get(plan)?.[variant];
}

/**
 * Refuses what a sweep would silently override in every run: a varied or `--set` `seed` (each
 * run's seed comes from `--seeds` / `seeds:`), a varied `seeds` or `matrix`, and a varied `until`
 * beside `--until` (which sets every run's).
 */
function checkRunKeys(
  input: PlanInput,
  vary: Record<string, MatrixValue[]>,
  origin: Record<string, 'matrix' | 'vary'>,
): void {
  const where = (key: string) =>
    origin[key] === 'vary' ? { file: '--vary', path: key } : { file: input.file, path: `matrix.${key}` };
  for (const key of ['seed', 'seeds', 'matrix']) {
    if (key in vary) {
      throw new ScenarioError({
        ...where(key),
        expected: 'a scenario field; a sweep runs every variant at each seed of --seeds (or seeds:)',
        found: `${key} varied`,
      });
    }
  }
  const seedSet = input.sets.find((s) => parseOverride(s).path.join('.') === 'seed');
  if (seedSet) {
    throw new ScenarioError({
      file: '--set',
      path: 'seed',
      expected:
        'the seeds of a sweep as `sweep --seeds A..B` or `run --seed N` (each run takes its seed from them)',
      found: `--set ${seedSet}`,
    });
  }
  const untilSet = input.sets.find((s) => parseOverride(s).path.join('.') === 'until');
  if (untilSet && input.until) {
    throw new ScenarioError({
      file: '--set',
      path: 'until',
      expected: 'either --set until or --until (which sets every run’s until)',
      found: `--set ${untilSet} and --until ${input.until.text}`,
    });
  }
  if ('until' in vary && input.until) {
    throw new ScenarioError({
      ...where('until'),
      expected: 'either a varied until or --until (which sets every run’s until)',
      found: `both, and --until ${input.until.text}`,
    });
  }
}

/**
 * Plans a sweep: reads and checks the base scenario and every variant (bad input is a
 * {@link ScenarioError} before anything runs), and lists the runs with their ids and replay
 * commands.
 *
 * @example
 * const plan = planSweep({ rapsim: '0.1.0', file, text, sets: [], vary: [parseVary('hardware.spec=legacy,eraps-amd')],
 *   seeds: [1, 2], replayOf: ({ seed, sets }) => `rapsim run ${file} --seed ${seed} ${sets.join(' ')}` });
 * plan.runs.length // 4
 */
export function planSweep(input: PlanInput): SweepPlan {
  const base = parseScenarioText(input.text, input.file, { sets: input.sets });
  const { vary, origin } = variedKeys(base, input.sets, input.vary);
  checkRunKeys(input, vary, origin);
  const seeds = input.seeds ?? base.seeds ?? [base.seed];
  const variants = crossProduct(vary);
  if (variants.length * seeds.length > MAX_RUNS) {
    throw new ScenarioError({
      file: input.file,
      path: 'matrix',
      expected: `at most ${MAX_RUNS.toLocaleString('en-US')} runs (variants × seeds)`,
      found: `${variants.length.toLocaleString('en-US')} × ${seeds.length.toLocaleString('en-US')}`,
    });
  }
  const runs: PlannedRun[] = [];
  const parsed: Scenario[] = [];
  variants.forEach((set, variant) => {
    const variantSets = Object.entries(set).map(([k, v]) => formatSet(k, v));
    const sets = [...input.sets, ...variantSets];
    const scenario = parseVariant(input, sets, set, origin);
    input.check?.(scenario);
    // Frozen: every run of the variant shares it when it runs on this thread (see runTask.ts).
    parsed.push(deepFreeze(scenario));
    for (const seed of seeds) {
      runs.push({
        index: runs.length,
        variant,
        seed,
        sets,
        id: runId({ rapsim: input.rapsim, text: input.text, sets, seed, untilPs: input.until?.ps }),
        replay: input.replayOf({ seed, sets }),
      });
    }
  });
  const plan: SweepPlan = {
    rapsim: input.rapsim,
    file: input.file,
    scenario: base.name,
    text: input.text,
    ...(input.until ? { until: input.until } : {}),
    vary,
    variants,
    seeds,
    runs,
  };
  parsedVariants.set(plan, parsed);
  return plan;
}

/**
 * Reads one variant. A value the schema rejects is reported where it came from — the scenario's
 * `matrix:` entry or the `--vary` argument — not as the `--set` the sweep made of it.
 */
function parseVariant(
  input: PlanInput,
  sets: string[],
  set: VariantSet,
  origin: Record<string, 'matrix' | 'vary'>,
): Scenario {
  try {
    return parseScenarioText(input.text, input.file, { sets });
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err;
    const key = Object.keys(set).find(
      (k) => err.path === k || err.path.startsWith(`${k}.`) || k.startsWith(`${err.path}.`),
    );
    if (key === undefined) throw err;
    const fromMatrix = origin[key] === 'matrix';
    throw new ScenarioError({
      file: fromMatrix ? input.file : '--vary',
      path: fromMatrix ? `matrix.${key}` : key,
      ...(err.problem ? { problem: err.problem.replace(/ in --set .*$/, '') } : {}),
      expected: err.expected,
      found: showFound(set[key]),
    });
  }
}
