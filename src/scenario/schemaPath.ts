import { z } from 'zod';

/** Whether a dotted path names a field of a schema, and if not, where and why it stops. */
export type SchemaPathCheck =
  | {
      ok: true;
      /** For each segment, what it indexes into: a list (by position) or a mapping (by key). */
      containers: ('list' | 'mapping')[];
    }
  | {
      ok: false;
      /** Index of the first segment that names nothing. */
      at: number;
      /** What would have been accepted at that segment. */
      expected: string;
    };

/**
 * Walks a zod schema along `path`, as `--set` and `matrix:` keys address a scenario: mapping keys
 * must be fields of the mapping, list positions must be indices, any key goes in a record
 * (latency names, script indices). Wrappers (defaults, optionals, transforms, recursion) are
 * looked through, so the walk follows the *input* shape that the user writes.
 *
 * @example
 * checkSchemaPath(ScenarioSchema, ['host', 'policy']) // { ok: true, containers: ['mapping', 'mapping'] }
 * checkSchemaPath(ScenarioSchema, ['hardware', 'coress']) // { ok: false, at: 1, expected: 'one of cores, ...' }
 */
export function checkSchemaPath(schema: z.ZodType, path: readonly string[], from = 0): SchemaPathCheck {
  const s = unwrap(schema);
  if (from === path.length) return { ok: true, containers: [] };
  const segment = path[from] ?? '';
  if (s instanceof z.ZodObject) {
    const field = (s.shape as Record<string, z.ZodType>)[segment];
    if (!Object.hasOwn(s.shape, segment) || !field) {
      return { ok: false, at: from, expected: `one of ${Object.keys(s.shape).join(', ')}` };
    }
    return within('mapping', checkSchemaPath(field, path, from + 1));
  }
  if (s instanceof z.ZodArray) {
    if (!/^(0|[1-9][0-9]*)$/.test(segment))
      return { ok: false, at: from, expected: 'a list index (0, 1, …)' };
    return within('list', checkSchemaPath(s.element as z.ZodType, path, from + 1));
  }
  if (s instanceof z.ZodRecord)
    return within('mapping', checkSchemaPath(s.valueType as z.ZodType, path, from + 1));
  if (s instanceof z.ZodUnion) {
    const tries = (s.options as z.ZodType[]).map((option) => checkSchemaPath(option, path, from));
    const ok = tries.find((t) => t.ok);
    if (ok) return ok;
    // Report the option that got furthest: it is the one the user most likely meant.
    return tries.reduce((best, t) => (!t.ok && !best.ok && t.at > best.at ? t : best));
  }
  return { ok: false, at: from, expected: `no key here: ${path.slice(0, from).join('.')} is a single value` };
}

function within(container: 'list' | 'mapping', rest: SchemaPathCheck): SchemaPathCheck {
  return rest.ok ? { ok: true, containers: [container, ...rest.containers] } : rest;
}

/** Looks through the wrappers that do not change which keys the input may have. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault)
      s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPrefault || s instanceof z.ZodLazy) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return s;
  }
}
