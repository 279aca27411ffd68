import type { z } from 'zod';
import { showFound } from './errors.js';

/**
 * One thing wrong with a scenario, not yet placed in the file. Schema issues and topology checks
 * both produce these; the loader picks the first in file order and adds the line number.
 */
export interface Problem {
  /** Path of the offending value in the input, e.g. ['vms', 0, 'pin', 2]. */
  path: readonly PropertyKey[];
  expected: string;
  /** The value found, already shown (see `showFound`); absent for a missing or unknown key. */
  found?: string;
  /** A lead-in: "unknown key", "missing key", "impossible topology: ...". */
  problem?: string;
}

/**
 * zod's per-parse error map, giving every issue that its schema did not word itself an
 * "expected ..." phrase in the same voice as the hand-written ones: "a mapping", "true or false",
 * "one of hide, naive, ...". The found value is not part of it: the loader shows it from the input.
 *
 * @example
 * ScenarioSchema.safeParse(input, { error: expectedPhrase })
 */
export function expectedPhrase(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return TYPE_PHRASES[issue.expected] ?? `a value of type ${issue.expected}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? show(issue.values[0])
        : `one of ${issue.values.map(show).join(', ')}`;
    case 'too_small':
      return bound(issue.origin, '≥', 'at least', issue.minimum, issue.inclusive);
    case 'too_big':
      return bound(issue.origin, '≤', 'at most', issue.maximum, issue.inclusive);
    case 'invalid_format':
      return issue.pattern ? `a string matching ${issue.pattern}` : `a ${issue.format}`;
    case 'not_multiple_of':
      return `a multiple of ${issue.divisor}`;
    case 'invalid_key':
      return issue.issues[0]?.message ?? 'a valid key';
    case 'unrecognized_keys':
      return 'no other keys';
    default:
      return 'a valid value';
  }
}

const TYPE_PHRASES: Record<string, string> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

function show(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

function bound(
  origin: string,
  sign: string,
  words: string,
  limit: number | bigint,
  inclusive?: boolean,
): string {
  if (origin === 'array' || origin === 'set') return `${words} ${limit} item${limit === 1 ? '' : 's'}`;
  if (origin === 'string') return `${words} ${limit} character${limit === 1 ? '' : 's'}`;
  const strict = sign === '≥' ? '>' : '<';
  return `a number ${inclusive === false ? strict : sign} ${limit}`;
}

/**
 * Turns zod's issues into problems, reading each found value out of the input (zod 4 issues carry
 * only the path). An unknown key becomes one problem per key, at the key's own path.
 *
 * @example
 * problemsFromIssues(ScenarioSchema.safeParse(input).error.issues, input)
 */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], input: unknown): Problem[] {
  return issues.flatMap((issue): Problem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: [...issue.path, key],
        problem: 'unknown key',
        expected: issue.message,
      }));
    }
    if (issue.code === 'invalid_key') {
      return [
        {
          path: issue.path,
          problem: 'bad key',
          expected: issue.message,
          found: showFound(String(issue.path.at(-1))),
        },
      ];
    }
    const value = valueAt(input, issue.path);
    if (issue.code === 'invalid_type' && value === undefined) {
      return [{ path: issue.path, problem: 'missing key', expected: issue.message }];
    }
    return [{ path: issue.path, expected: issue.message, found: showFound(value) }];
  });
}

/**
 * The value at `path` in plain parsed data, or undefined.
 *
 * @example
 * valueAt({ vms: [{ pin: [0, 7] }] }, ['vms', 0, 'pin', 1]) // 7
 */
export function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment as string];
  }
  return node;
}
