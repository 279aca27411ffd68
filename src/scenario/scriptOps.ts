import { z } from 'zod';
import type { Time } from '../actors/time.js';
import { DurationSchema } from './duration.js';
import { LIMITS } from './limits.js';
import { type MsrName, MsrSchema } from './msr.js';
import { bool, ifWrongType, intAtLeast, intIn, oneOf } from './numbers.js';
import { strictObject } from './strictObject.js';

/** How a script changes one control-register bit. */
export type BitAction = 'set' | 'clear' | 'toggle';

/** CR4 bits a script may change, in the order their changes are applied. */
export const CR4_BITS = ['pge', 'pse', 'pae', 'pcide', 'pke', 'smep'] as const;
export type Cr4Bit = (typeof CR4_BITS)[number];

/** CR0 bits a script may change, in the order their changes are applied. */
export const CR0_BITS = ['pg', 'wp'] as const;
export type Cr0Bit = (typeof CR0_BITS)[number];

/** `movCr3: { process, noflush? }`: the bare MOV CR3 instruction (a new or the same CR3). */
export interface MovCr3Op {
  op: 'movCr3';
  process: number;
  /** CR3 bit 63 (PCID NOFLUSH): keep the TLB entries of the PCID being loaded. */
  noflush: boolean;
}
/** `invpcid: { type, process?, page? }`; without `process` the running process is meant. */
export interface InvpcidOp {
  op: 'invpcid';
  type: 0 | 1 | 2 | 3;
  process: number | undefined;
  /** The page of a type-0 (individual address) invalidation; the hardware layer picks one if absent. */
  page: number | undefined;
}
export interface InvlpgOp {
  op: 'invlpg';
  page: number;
}
/** `cr4: { pge: toggle, ... }`; `changes` are in {@link CR4_BITS} order, whatever the file's order. */
export interface Cr4Op {
  op: 'cr4';
  changes: { bit: Cr4Bit; action: BitAction }[];
}
/** `cr0: { pg?: set|clear, wp?: set|clear }`; `changes` are in {@link CR0_BITS} order. */
export interface Cr0Op {
  op: 'cr0';
  changes: { bit: Cr0Bit; action: Exclude<BitAction, 'toggle'> }[];
}
/** `wrmsr: { msr }`, by name or by 32-bit index. */
export interface WrmsrOp {
  op: 'wrmsr';
  msr: MsrName | number;
}
/** The instructions that `emulate:` may wrap: those KVM's emulator can meet (docs/domain.md §3). */
export type EmulatedOp = MovCr3Op | InvpcidOp | InvlpgOp | Cr4Op | Cr0Op | WrmsrOp;

/**
 * One operation of a litmus-style script (interface.md "Scripts"), normalized: the file's
 * one-key mapping `{ movCr3: { process: 2 } }` becomes `{ op: 'movCr3', process: 2, noflush: false }`.
 * `op` is always the key the user wrote, so an error about an op can name its path in the file.
 */
export type ScriptOp =
  | { op: 'call'; n: number }
  | { op: 'ret'; n: number }
  /** `n`: that many CALLs; 'auto': as many as the CPU's CPUID says (RapSize × 8, or 32 without ERAPS). */
  | { op: 'stuffRap'; n: number | 'auto' }
  /** The OS's whole context switch: stuffing if its policy says so, then its switch instruction. */
  | { op: 'switchTo'; process: number }
  | EmulatedOp
  /** The wrapped instruction reaches KVM's instruction emulator (as with MMIO). */
  | { op: 'emulate'; inner: EmulatedOp }
  | { op: 'shootdown'; pages: number }
  | { op: 'ipi'; to: number }
  /** An INIT IPI to another CPU (a reset, as CPU hotplug or kexec does): an implicit TLB invalidation. */
  | { op: 'init'; to: number }
  | { op: 'hlt'; for: Time }
  | { op: 'wait'; for: Time }
  /** Enter the named L2 VM (only in the script of an L1 that hosts it). */
  | { op: 'vmrun'; vm: string }
  | { op: 'syncpoint'; name: string }
  | { op: 'awaitSyncpoint'; name: string }
  | { op: 'ibpb' };

/**
 * A script per vCPU (or per core, for `hostProcesses`), keyed by index as a canonical decimal
 * string ('0', '1', …), so both `script[0]` and `script[String(i)]` find it.
 */
export type Script = Record<string, ScriptOp[]>;

const processIndex = intIn(0, LIMITS.processes - 1, 'a process index (0, 1, …)');
const count = intIn(1, LIMITS.callsPerOp);
const page = intIn(0, LIMITS.pages - 1, `a page index in 0..${LIMITS.pages - 1}`);
const syncName = z.string({ error: 'a syncpoint name' }).min(1, { error: 'a non-empty syncpoint name' });

const cr4Action = oneOf(['set', 'clear', 'toggle']);
const cr0Action = oneOf(['set', 'clear']);

/** The instructions that may stand alone or inside `emulate:`. */
const emulatable = {
  movCr3: strictObject(
    { process: processIndex, noflush: bool().default(false) },
    '{ process, noflush? }',
  ).transform((v): MovCr3Op => ({ op: 'movCr3', process: v.process, noflush: v.noflush })),
  invpcid: strictObject(
    {
      type: intIn(0, 3, 'an INVPCID type: 0, 1, 2 or 3'),
      process: processIndex.optional(),
      page: page.optional(),
    },
    '{ type: 0|1|2|3, process? }',
  ).transform(
    (v): InvpcidOp => ({
      op: 'invpcid',
      type: v.type as InvpcidOp['type'],
      process: v.process,
      page: v.page,
    }),
  ),
  invlpg: strictObject({ page }, '{ page }').transform((v): InvlpgOp => ({ op: 'invlpg', page: v.page })),
  cr4: strictObject(
    Object.fromEntries(CR4_BITS.map((bit) => [bit, cr4Action.optional()])) as Record<
      Cr4Bit,
      z.ZodOptional<typeof cr4Action>
    >,
    '{ pge|pse|pae|pcide|pke|smep: set|clear|toggle }',
  )
    .refine((v) => CR4_BITS.some((bit) => v[bit] !== undefined), {
      error: 'at least one of pge, pse, pae, pcide, pke, smep',
    })
    .transform((v): Cr4Op => ({ op: 'cr4', changes: changesOf(CR4_BITS, v) })),
  cr0: strictObject(
    { pg: cr0Action.optional(), wp: cr0Action.optional() },
    '{ pg?: set|clear, wp?: set|clear }',
  )
    .refine((v) => v.pg !== undefined || v.wp !== undefined, { error: 'at least one of pg, wp' })
    .transform((v): Cr0Op => ({ op: 'cr0', changes: changesOf(CR0_BITS, v) })),
  wrmsr: strictObject({ msr: MsrSchema }, '{ msr: NAME or index }').transform(
    (v): WrmsrOp => ({ op: 'wrmsr', msr: v.msr }),
  ),
};

/** The operation to which `emulate:` refers: exactly one of the {@link EmulatedOp} keys. */
const EmulatedOpSchema = exactlyOneOf(emulatable, 'an instruction such as { movCr3: { process: 1 } }');

/**
 * Every script operation key and the schema that reads and normalizes its value. The key is the
 * op's name in the file and in the normalized form alike.
 */
const operations = {
  call: count.transform((n): ScriptOp => ({ op: 'call', n })),
  ret: count.transform((n): ScriptOp => ({ op: 'ret', n })),
  stuffRap: z
    .union([intIn(1, LIMITS.callsPerOp), z.literal('auto')], { error: 'a number of CALLs (≥ 1) or auto' })
    .transform((n): ScriptOp => ({ op: 'stuffRap', n })),
  switchTo: strictObject({ process: processIndex }, '{ process }').transform(
    (v): ScriptOp => ({ op: 'switchTo', process: v.process }),
  ),
  ...emulatable,
  emulate: EmulatedOpSchema.transform((inner): ScriptOp => ({ op: 'emulate', inner })),
  shootdown: strictObject({ pages: intIn(1, LIMITS.pages).default(1) }, '{ pages }').transform(
    (v): ScriptOp => ({ op: 'shootdown', pages: v.pages }),
  ),
  ipi: strictObject({ to: intAtLeast(0, 'a vCPU or core index (0, 1, …)') }, '{ to }').transform(
    (v): ScriptOp => ({ op: 'ipi', to: v.to }),
  ),
  init: strictObject({ to: intAtLeast(0, 'a vCPU or core index (0, 1, …)') }, '{ to }').transform(
    (v): ScriptOp => ({ op: 'init', to: v.to }),
  ),
  hlt: DurationSchema.transform((t): ScriptOp => ({ op: 'hlt', for: t })),
  wait: DurationSchema.transform((t): ScriptOp => ({ op: 'wait', for: t })),
  vmrun: z
    .string({ error: 'the name of an L2 VM' })
    .min(1, { error: 'the name of an L2 VM' })
    .transform((vm): ScriptOp => ({ op: 'vmrun', vm })),
  syncpoint: syncName.transform((name): ScriptOp => ({ op: 'syncpoint', name })),
  awaitSyncpoint: syncName.transform((name): ScriptOp => ({ op: 'awaitSyncpoint', name })),
  ibpb: z.literal(true, { error: 'true (ibpb: true)' }).transform((): ScriptOp => ({ op: 'ibpb' })),
};

/** The op keys, in the order of interface.md. */
export const SCRIPT_OP_KEYS = Object.keys(operations) as (keyof typeof operations)[];

/**
 * One script operation: a mapping with exactly one key from {@link SCRIPT_OP_KEYS}, normalized
 * to a {@link ScriptOp}.
 *
 * @example
 * ScriptOpSchema.parse({ movCr3: { process: 2 } }) // { op: 'movCr3', process: 2, noflush: false }
 * ScriptOpSchema.parse({ emulate: { invlpg: { page: 3 } } })
 * // { op: 'emulate', inner: { op: 'invlpg', page: 3 } }
 */
export const ScriptOpSchema = exactlyOneOf(operations, 'a script operation such as { call: 4 }').meta({
  id: 'ScriptOp',
  description: 'One script operation: a mapping with exactly one key (interface.md, Scripts).',
});

/**
 * The script of each vCPU (or core) by index: `0: [ { call: 4 }, { ret: 4 } ]`. Keys must be
 * canonical decimal indices; whether the vCPU or core exists is checked with the topology.
 *
 * @param unit what the keys count, for the error message ('vCPU' or 'core')
 */
export function scriptSchema(unit: 'vCPU' | 'core') {
  const what = `a ${unit} index (0, 1, …)`;
  return z
    .record(
      z.string().regex(/^(0|[1-9][0-9]*)$/, { error: what }),
      z.array(ScriptOpSchema, { error: 'a list of script operations' }).max(LIMITS.scriptOps, {
        error: `at most ${LIMITS.scriptOps} operations`,
      }),
      { error: ifWrongType(`a mapping from ${unit} index to a list of operations`) },
    )
    .transform((byIndex): Script => byIndex);
}

/**
 * A mapping with exactly one of `fields`' keys, read into that key's value. The mapping form (not
 * a zod union) keeps errors precise: an unknown key lists the known ones, a bad value is reported
 * at its own path.
 */
function exactlyOneOf<T extends Record<string, z.ZodType>>(fields: T, what: string) {
  const keys = Object.keys(fields);
  return strictObject(fields, what)
    .partial()
    .refine((v) => Object.keys(v).length === 1, {
      error: `exactly one operation, one of ${keys.join(', ')}`,
      // After an unknown key or a bad value, "exactly one" would only repeat the same mistake.
      when: (payload) => payload.issues.length === 0,
    })
    .meta({ minProperties: 1, maxProperties: 1 })
    .transform((v) => {
      const [only] = Object.values(v) as z.output<T[keyof T]>[];
      // The refinement above guarantees exactly one value; transforms do not run after an issue.
      return only as NonNullable<typeof only>;
    });
}

function changesOf<B extends string, A>(bits: readonly B[], v: Partial<Record<B, A>>) {
  return bits.flatMap((bit) => {
    const action = v[bit];
    return action === undefined ? [] : [{ bit, action }];
  });
}
