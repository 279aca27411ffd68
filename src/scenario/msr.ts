import { z } from 'zod';
import { LIMITS } from './limits.js';

/**
 * MSRs a script may name in `wrmsr`. The first group is AMD's list of writes that clear the RAP
 * microarchitecturally (LKML 08826b5879e2d9c354424279763d3ce5556f44cc.camel@amd.com, docs/domain.md
 * §2); MTRR is the APM's explicit implicit-invalidation case; EFER and SPEC_CTRL are controls next
 * to them that do *not* clear it, and a PRED_CMD write is an IBPB (which clears the RAP when the
 * hardware has IBPB_RET), so scripts can check every side. The hardware layer decides what each one
 * does; this list only fixes the spelling.
 */
export const MSR_NAMES = [
  'SYSCFG',
  'TOM',
  'TOM2',
  'APIC_BASE',
  'PREFETCH_CONTROL',
  'IORR',
  'SMMADDR',
  'SMMMASK',
  'ECS_BASE',
  'MTRR',
  'EFER',
  'SPEC_CTRL',
  'PRED_CMD',
] as const;

/** A named MSR (see {@link MSR_NAMES}). */
export type MsrName = (typeof MSR_NAMES)[number];

/**
 * An MSR given by name or by its 32-bit index (YAML reads `0xC0010010` as an integer). An unknown
 * name is an error that lists the known ones, since a misspelt name would otherwise silently be
 * "some other MSR".
 *
 * @example
 * MsrSchema.parse('TOM2') // 'TOM2'
 * MsrSchema.parse(0xc0010010) // 3221291024
 */
export const MsrSchema = z.union([z.enum(MSR_NAMES), z.int().min(0).max(LIMITS.msrIndex)], {
  error: `an MSR index (0..0xFFFFFFFF) or one of ${MSR_NAMES.join(', ')}`,
});
