/** What a {@link ScenarioError} says, field by field, for callers that render it themselves. */
export interface ScenarioErrorDetails {
  /** The scenario file as the user named it (or `--seeds`, `--set`: where the bad input came from). */
  file: string;
  /** Dotted path of the offending value, e.g. `vms.0.pin.2`; '' for the file as a whole. */
  path: string;
  /** What would have been accepted, as a phrase: "a core index in 0..3"; '' when `problem` says it all. */
  expected: string;
  /** The value found, as JSON truncated to about 60 characters; absent when nothing is to show. */
  found?: string;
  /** 1-based line (and column) in the file, when the value came from the file. */
  line?: number;
  column?: number;
  /** A lead-in when the error is not just a wrong value: "unknown key", "YAML syntax error: …". */
  problem?: string;
  /** Problems found besides this one (only the first is reported in full). */
  more?: number;
}

/**
 * Bad input: the scenario cannot be run as written. The CLI prints its message (one paragraph,
 * never a stack) and exits with {@link ScenarioError.exitCode} 2 (interface.md, "Exit codes").
 *
 * @example
 * new ScenarioError({ file: 'x.yaml', path: 'vms.0.pin.2', line: 14, expected: 'a core index in 0..3', found: '7' })
 *   .message // 'x.yaml: vms.0.pin.2 (line 14): expected a core index in 0..3, found 7.'
 */
export class ScenarioError extends Error implements ScenarioErrorDetails {
  override readonly name = 'ScenarioError';
  /** The process exit code for bad input. */
  readonly exitCode = 2;
  readonly file: string;
  readonly path: string;
  readonly expected: string;
  readonly found?: string;
  readonly line?: number;
  readonly column?: number;
  readonly problem?: string;
  readonly more?: number;

  constructor(details: ScenarioErrorDetails) {
    super(formatScenarioError(details));
    this.file = details.file;
    this.path = details.path;
    this.expected = details.expected;
    this.found = details.found;
    this.line = details.line;
    this.column = details.column;
    this.problem = details.problem;
    this.more = details.more;
  }
}

/**
 * The one-paragraph message: `file: path (line N): [problem; ]expected X, found Y. (and N more problems)`,
 * or `file (line N, column M): problem.` for an error about the file as a whole.
 */
export function formatScenarioError(d: ScenarioErrorDetails): string {
  const loc = location(d);
  const where = d.path ? `: ${d.path}${loc ? ` ${loc}` : ''}` : loc ? ` ${loc}` : '';
  const expectation = d.expected
    ? `expected ${d.expected}${d.found === undefined ? '' : `, found ${d.found}`}`
    : '';
  const what = [d.problem, expectation].filter(Boolean).join('; ').replace(/\.$/, '');
  const more = d.more ? ` (and ${d.more} more problem${d.more === 1 ? '' : 's'})` : '';
  // Newlines from a parser's reason would break the one-paragraph promise.
  return `${d.file}${where}: ${what}.${more}`.replace(/\s*\n\s*/g, ' ');
}

function location(d: ScenarioErrorDetails): string {
  if (d.line === undefined) return '';
  return d.column === undefined ? `(line ${d.line})` : `(line ${d.line}, column ${d.column})`;
}

const FOUND_MAX = 60;

/**
 * A found value as the message shows it: JSON, cut at about 60 characters.
 *
 * @example
 * showFound('naiv') // '"naiv"'
 * showFound(undefined) // 'nothing'
 */
export function showFound(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value) ?? String(value);
  return json.length > FOUND_MAX ? `${json.slice(0, FOUND_MAX - 1)}…` : json;
}
