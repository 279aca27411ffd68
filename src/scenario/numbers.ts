import { z } from 'zod';

/**
 * An integer in `min..max`, whose every error (wrong type, too small, too big) states the whole
 * range: "expected an integer in 1..1024" tells a user more than "too big".
 *
 * @example
 * intIn(1, 1024).parse(64) // 64
 */
export function intIn(min: number, max: number, what = `an integer in ${min}..${max}`) {
  return z.int({ error: what }).min(min, { error: what }).max(max, { error: what });
}

/**
 * An integer ≥ `min` with no bound above but JavaScript's exact range.
 *
 * @example
 * intAtLeast(0).parse(7) // 7
 */
export function intAtLeast(min: number, what = `an integer ≥ ${min}`) {
  return z.int({ error: what }).min(min, { error: what });
}

/** A boolean whose error says what YAML spells: `true` or `false`. */
export function bool() {
  return z.boolean({ error: 'true or false' });
}

/**
 * One of a fixed list of names, whose error lists them in the order the docs give them.
 *
 * @example
 * oneOf(['hide', 'naive']).parse('naive') // 'naive'
 */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `one of ${values.join(', ')}` });
}

/**
 * An error option for collections whose own message should cover only "this is not a collection
 * at all"; their keys and items then keep the precise messages of their own schemas.
 *
 * @example
 * z.record(Key, Value, { error: ifWrongType('a mapping from name to duration') })
 */
export function ifWrongType(what: string) {
  return (issue: { code?: string }) => (issue.code === 'invalid_type' ? what : undefined);
}
