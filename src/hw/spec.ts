/**
 * The hardware spec variants of docs/domain.md §2 and the architectural events that matter to
 * the RAP. `promises` is the spec's word (what a context may believe); `microarchEligible` are
 * the events on which real silicon may clear beyond the promise (`microarchClears`).
 */
export const SPECS = ['legacy', 'eraps-apm', 'eraps-amd', 'eraps-cr3'] as const;
export type SpecVariant = (typeof SPECS)[number];

/** Architectural events that a spec may promise to clear the RAP on. */
export type RapAction =
  | 'mov-cr3'
  | 'invpcid-0'
  | 'invpcid-1'
  | 'invpcid-2'
  | 'invpcid-3'
  | 'cr0-pg'
  | 'cr0-wp'
  | 'cr4-pae'
  | 'cr4-pse'
  | 'cr4-pge'
  | 'cr4-pke-set'
  | 'cr4-pcide-clear'
  | 'cr4-other'
  | 'smi'
  | 'rsm'
  | 'wrmsr-mtrr'
  | 'wrmsr-msrlist'
  | 'wrmsr-other'
  | 'efer'
  | 'init'
  | 'a20m'
  | 'invlpg'
  | 'invlpga'
  | 'invlpgb'
  | 'vmrun-clear-rap'
  | 'interrupt'
  | 'vmrun-tlb-flush';

/** APM 3.43 §5.5.3 "implicit invalidation" items other than the MSR item. */
const IMPLICIT_INVALIDATIONS: readonly RapAction[] = [
  'cr0-pg',
  'cr4-pae',
  'cr4-pse',
  'cr4-pge',
  'cr4-pke-set',
  'cr4-pcide-clear',
  'smi',
  'rsm',
  'wrmsr-mtrr',
  'init',
  'a20m',
];

/** APM §3.2.9: MOV CR3 and INVPCID of any type except 0 (single address). */
const CLEARING_INSTRUCTIONS: readonly RapAction[] = ['mov-cr3', 'invpcid-1', 'invpcid-2', 'invpcid-3'];

/**
 * What each spec promises (docs/domain.md §2 table). `eraps-apm` reads APM 3.43 literally,
 * including "writes to certain model-specific registers"; `eraps-amd` is AMD's clarification
 * (LKML 08826b5879e2d9c354424279763d3ce5556f44cc.camel@amd.com): the MSR item is microarchitectural;
 * `eraps-cr3` is Andrew Cooper's proposal (4102ede9-4bf7-4c0a-a303-5ed4d9cca762@citrix.com).
 * VMCB CLEAR_RAP is promised by every ERAPS spec.
 */
export const PROMISES: Readonly<Record<SpecVariant, ReadonlySet<RapAction>>> = {
  legacy: new Set(),
  'eraps-apm': new Set([
    ...CLEARING_INSTRUCTIONS,
    ...IMPLICIT_INVALIDATIONS,
    'wrmsr-msrlist',
    'vmrun-clear-rap',
  ]),
  'eraps-amd': new Set([...CLEARING_INSTRUCTIONS, ...IMPLICIT_INVALIDATIONS, 'vmrun-clear-rap']),
  'eraps-cr3': new Set(['mov-cr3', 'vmrun-clear-rap']),
};

/**
 * Events on which silicon may clear beyond the promise (docs/domain.md §2): WRMSR to the MSR
 * list, INVLPGB, a VMRUN that flushes the TLB, interrupt delivery.
 */
export const MICROARCH_ELIGIBLE: ReadonlySet<RapAction> = new Set([
  'wrmsr-msrlist',
  'invlpgb',
  'vmrun-tlb-flush',
  'interrupt',
]);

/** Does `spec` promise that `action` clears the RAP? */
export function promises(spec: SpecVariant, action: RapAction): boolean {
  return PROMISES[spec].has(action);
}

/** With ERAPS, host- and guest-pushed entries are not used across the boundary (APM §3.2.9). */
export function tagsHostGuest(spec: SpecVariant): boolean {
  return spec !== 'legacy';
}

/** Human name of an action for reports ("MOV CR3 (eraps-amd)"). */
export function describeAction(action: RapAction): string {
  const names: Partial<Record<RapAction, string>> = {
    'mov-cr3': 'MOV CR3',
    'invpcid-0': 'INVPCID type 0',
    'invpcid-1': 'INVPCID type 1',
    'invpcid-2': 'INVPCID type 2',
    'invpcid-3': 'INVPCID type 3',
    'cr0-pg': 'CR0.PG change',
    'cr4-pge': 'CR4.PGE change',
    'cr4-pae': 'CR4.PAE change',
    'cr4-pse': 'CR4.PSE change',
    'cr4-pke-set': 'CR4.PKE 0→1',
    'cr4-pcide-clear': 'CR4.PCIDE 1→0',
    'wrmsr-mtrr': 'WRMSR to an MTRR',
    'wrmsr-msrlist': 'WRMSR to a listed MSR',
    'vmrun-clear-rap': 'VMRUN with CLEAR_RAP',
    init: 'INIT',
  };
  return names[action] ?? action;
}
