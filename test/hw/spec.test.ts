import { describe, expect, it } from 'vitest';
import {
  describeAction,
  MICROARCH_ELIGIBLE,
  PROMISES,
  promises,
  type RapAction,
  SPECS,
  tagsHostGuest,
} from '../../src/hw/spec.js';

/** APM 3.43 §5.5.3 implicit invalidations other than the MSR item (docs/domain.md §2). */
const IMPLICIT: RapAction[] = [
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
const INSTRUCTIONS: RapAction[] = ['mov-cr3', 'invpcid-1', 'invpcid-2', 'invpcid-3'];
const NEVER: RapAction[] = [
  'invpcid-0',
  'cr0-wp',
  'cr4-other',
  'efer',
  'invlpg',
  'invlpga',
  'invlpgb',
  'wrmsr-other',
  'interrupt',
  'vmrun-tlb-flush',
];

describe('spec variants (docs/domain.md §2 table)', () => {
  it('names the four variants', () => {
    expect([...SPECS]).toEqual(['legacy', 'eraps-apm', 'eraps-amd', 'eraps-cr3']);
  });

  it('legacy promises nothing', () => {
    expect(PROMISES.legacy.size).toBe(0);
  });

  it('eraps-apm promises MOV CR3, INVPCID type≠0, every implicit invalidation, the MSR list and VMCB CLEAR_RAP', () => {
    for (const a of [...INSTRUCTIONS, ...IMPLICIT, 'wrmsr-msrlist', 'vmrun-clear-rap'] as RapAction[])
      expect(promises('eraps-apm', a), a).toBe(true);
  });

  it('eraps-amd is eraps-apm without the MSR item', () => {
    for (const a of [...INSTRUCTIONS, ...IMPLICIT, 'vmrun-clear-rap'] as RapAction[])
      expect(promises('eraps-amd', a), a).toBe(true);
    expect(promises('eraps-amd', 'wrmsr-msrlist')).toBe(false);
    expect(new Set(PROMISES['eraps-amd'])).toEqual(
      new Set([...PROMISES['eraps-apm']].filter((a) => a !== 'wrmsr-msrlist')),
    );
  });

  it('eraps-cr3 promises MOV CR3 and VMCB CLEAR_RAP only', () => {
    expect(new Set(PROMISES['eraps-cr3'])).toEqual(new Set(['mov-cr3', 'vmrun-clear-rap']));
  });

  it('no spec promises INVPCID 0, CR0.WP, EFER, INVLPG, INVLPGA, INVLPGB, interrupts or a TLB-flushing VMRUN', () => {
    for (const spec of SPECS) for (const a of NEVER) expect(promises(spec, a), `${spec} ${a}`).toBe(false);
  });

  it('microarch-eligible events are the MSR list, INVLPGB, a TLB-flushing VMRUN and interrupts', () => {
    expect(new Set(MICROARCH_ELIGIBLE)).toEqual(
      new Set(['wrmsr-msrlist', 'invlpgb', 'vmrun-tlb-flush', 'interrupt']),
    );
  });

  it('every ERAPS spec tags host/guest entries, legacy does not', () => {
    expect(tagsHostGuest('legacy')).toBe(false);
    for (const s of ['eraps-apm', 'eraps-amd', 'eraps-cr3'] as const) expect(tagsHostGuest(s)).toBe(true);
  });

  it('describes actions for reports', () => {
    expect(describeAction('mov-cr3')).toBe('MOV CR3');
    expect(describeAction('invpcid-1')).toBe('INVPCID type 1');
    expect(describeAction('wrmsr-msrlist')).toMatch(/WRMSR/);
    expect(describeAction('invlpgb')).toBe('invlpgb');
  });
});
