import { z } from 'zod';
import { oneOf } from './numbers.js';
import { strictObject } from './strictObject.js';

/**
 * The properties the checkers enforce (docs/domain.md §5): the list of check/violation.ts, which
 * this layer may not import (test/scenario/properties.test.ts keeps the two equal).
 */
export const PROPERTIES = [
  'rap-host-guest',
  'rap-promised-clear',
  'rap-nested',
  'rap-cross-context',
  'tlb-stale',
] as const;
export type PropertyName = (typeof PROPERTIES)[number];

/**
 * What a scenario expects of its own run. `violations` lists the properties allowed to occur
 * (omitted: any may); `find` lists those that must occur; `exitCode` pins the outcome, so a
 * scenario that demonstrates a bug can say "this must fail".
 *
 * @example
 * ExpectSchema.parse({ violations: ['rap-promised-clear'], find: ['rap-promised-clear'] })
 */
export const ExpectSchema = strictObject({
  violations: z.array(oneOf(PROPERTIES), { error: 'a list of property names' }).optional(),
  /** Properties that must occur: a litmus test that demonstrates a bug fails if it stops finding it. */
  find: z.array(oneOf(PROPERTIES), { error: 'a list of property names' }).optional(),
  exitCode: z.union([z.literal(0), z.literal(1)], { error: '0 or 1' }).optional(),
});
export type Expect = z.output<typeof ExpectSchema>;
