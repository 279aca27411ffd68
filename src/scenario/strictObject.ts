import { z } from 'zod';

/**
 * A zod object that rejects unknown keys, whose error for an unknown key already lists the keys
 * that are allowed there. Every mapping of a scenario file is one of these: a typo such as
 * `coress` must fail loudly (interface.md: "Unknown keys are errors"), and the fix is easiest when
 * the message shows the right spelling.
 *
 * @param shape the object's fields
 * @param what how to describe the whole mapping when the value is not a mapping at all
 *
 * @example
 * const Point = strictObject({ x: z.int(), y: z.int() }, 'a point such as { x: 1, y: 2 }');
 * Point.safeParse({ x: 1, z: 2 }).error?.issues[0]?.message // 'one of x, y'
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T, what = 'a mapping') {
  const known = `one of ${Object.keys(shape).join(', ')}`;
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? known : issue.code === 'invalid_type' ? what : undefined,
  });
}
