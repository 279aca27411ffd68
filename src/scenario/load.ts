import { readFileSync } from 'node:fs';
import { ScenarioError } from './errors.js';
import { expectedPhrase, type Problem, problemsFromIssues } from './issues.js';
import { applyOverrides, type Override, parseOverride } from './overrides.js';
import { type Scenario, ScenarioSchema } from './schema.js';
import { checkSchemaPath } from './schemaPath.js';
import { checkTopology } from './topology.js';
import { locate, parseYaml, type YamlSource } from './yamlSource.js';

/** Options of {@link loadScenario}. */
export interface LoadOptions {
  /** `--set key=value` arguments, applied in order after the file is read. */
  sets?: readonly string[];
}

/**
 * Reads, overrides, validates and checks a scenario file: everything `rapsim run` needs before it
 * simulates. Any bad input (unreadable file, YAML syntax, schema, unknown key, impossible
 * topology) is a {@link ScenarioError}: exit code 2, one paragraph naming file, path and line.
 *
 * @example
 * const scenario = loadScenario('scenarios/default.yaml', { sets: ['host.policy=naive'] });
 */
export function loadScenario(file: string, opts: LoadOptions = {}): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ScenarioError({ file, path: '', expected: '', problem: `cannot read the file (${reason})` });
  }
  return parseScenarioText(text, file, opts);
}

/**
 * {@link loadScenario} on text already in hand; `fileLabel` is what messages call the file.
 *
 * @example
 * parseScenarioText('name: x\nhardware: { cores: 2 }\n', 'x.yaml').hardware.cores // 2
 */
export function parseScenarioText(text: string, fileLabel: string, opts: LoadOptions = {}): Scenario {
  const { value, source } = parseYaml(text, fileLabel);
  const overrides = (opts.sets ?? []).map(parseOverride);
  const input = applyOverrides(ScenarioSchema, value, overrides, fileLabel);
  const parsed = ScenarioSchema.safeParse(input, { error: expectedPhrase });
  if (!parsed.success) throw firstProblem(problemsFromIssues(parsed.error.issues, input), source, overrides);
  const problems = [...matrixProblems(parsed.data), ...checkTopology(parsed.data)];
  if (problems.length > 0) throw firstProblem(problems, source, overrides);
  return parsed.data;
}

/** Each `matrix:` key must name a field, exactly as a `--set` key must. */
function matrixProblems(scenario: Scenario): Problem[] {
  return Object.keys(scenario.matrix ?? {}).flatMap((key): Problem[] => {
    const check = checkSchemaPath(ScenarioSchema, key.split('.'));
    return check.ok
      ? []
      : [{ path: ['matrix', key], problem: 'matrix key names no field', expected: check.expected }];
  });
}

/**
 * The problem to report: the first in file order (what a user fixes first), with its line, or a
 * note that the value came from `--set`. The rest are counted, not listed.
 */
function firstProblem(
  problems: readonly Problem[],
  source: YamlSource,
  overrides: readonly Override[],
): ScenarioError {
  const placed = problems.map((p, order) => ({ p, order, where: placement(p.path, source, overrides) }));
  // Values from --set have no line: they sort first, as the user's most recent change. On one
  // line an unknown key comes first: a key reported missing there is most often its misspelling.
  const rank = (p: Problem) => (p.problem?.startsWith('unknown key') ? 0 : 1);
  placed.sort(
    (a, b) => (a.where.line ?? 0) - (b.where.line ?? 0) || rank(a.p) - rank(b.p) || a.order - b.order,
  );
  const first = placed[0];
  if (!first) throw new Error('firstProblem called without problems');
  const { where } = first;
  const p = explainUnknownKey(first.p, problems);
  const distinct = new Set(problems.map((q) => q.path.join('.')));
  return new ScenarioError({
    file: source.file,
    path: p.path.map(String).join('.'),
    expected: p.expected,
    found: p.found === undefined || !where.from ? p.found : `${p.found} (from --set ${where.from})`,
    problem: p.problem,
    line: where.line,
    more: distinct.size - 1,
  });
}

/**
 * An unknown key beside a missing one (`nme: a` where `name` is required): says which key is
 * missing there, since that is most likely what the unknown one was meant to be. A key with a
 * colon inside (`{name:a}`) was meant as a key and a value.
 */
function explainUnknownKey(p: Problem, problems: readonly Problem[]): Problem {
  if (p.problem !== 'unknown key') return p;
  const key = String(p.path.at(-1));
  // `{name:a}`: YAML reads a colon without a space after it as part of one plain scalar.
  if (/^[\w.-]+:\S/.test(key)) {
    return { ...p, problem: `unknown key (YAML needs a space after the colon: "${key.replace(':', ': ')}")` };
  }
  const parent = p.path.slice(0, -1).join('.');
  const missing = problems.find(
    (q) => q.problem === 'missing key' && q.path.slice(0, -1).join('.') === parent,
  );
  if (!missing) return p;
  return {
    ...p,
    problem: `unknown key (and ${JSON.stringify(String(missing.path.at(-1)))} is missing here: a misspelling?)`,
  };
}

function placement(
  path: readonly PropertyKey[],
  source: YamlSource,
  overrides: readonly Override[],
): { line?: number; from?: string } {
  const segments = path.map(String);
  // A value set by --set has no line; the last override of a path wins, so it is the one to name.
  const from = [...overrides].reverse().find((o) => o.path.every((s, i) => segments[i] === s));
  if (from) return { from: from.arg };
  return { line: locate(source, path)?.line };
}
