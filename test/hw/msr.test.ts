import { describe, expect, it } from 'vitest';
import { classifyMsr, MSR_NUMBERS } from '../../src/hw/msr.js';

/** AMD's microarchitectural list (LKML 08826b5879e2…@amd.com, docs/domain.md §2). */
const LISTED = [
  'APIC_BASE',
  'PREFETCH_CONTROL',
  'SYSCFG',
  'IORR',
  'TOM',
  'TOM2',
  'SMMADDR',
  'SMMMASK',
  'ECS_BASE',
];

describe('classifyMsr', () => {
  it('classifies every listed MSR as wrmsr-msrlist, by name (any case) and by number', () => {
    for (const name of LISTED) {
      expect(classifyMsr(name), name).toBe('wrmsr-msrlist');
      expect(classifyMsr(name.toLowerCase()), name).toBe('wrmsr-msrlist');
      const n = MSR_NUMBERS[name];
      expect(n, name).toBeTypeOf('number');
      expect(classifyMsr(n!), name).toBe('wrmsr-msrlist');
    }
  });

  it('uses the architectural numbers of the well-known MSRs', () => {
    expect(MSR_NUMBERS).toMatchObject({
      APIC_BASE: 0x1b,
      SPEC_CTRL: 0x48,
      PRED_CMD: 0x49,
      EFER: 0xc0000080,
      SYSCFG: 0xc0010010,
      TOM: 0xc001001a,
      TOM2: 0xc001001d,
      MTRR: 0x2ff,
    });
  });

  it('classifies all four IORR registers (0xC0010016–0xC0010019) as listed, and their neighbours not', () => {
    for (const n of [0xc0010016, 0xc0010017, 0xc0010018, 0xc0010019])
      expect(classifyMsr(n)).toBe('wrmsr-msrlist');
    expect(classifyMsr(0xc0010015)).toBe('wrmsr-other');
    expect(classifyMsr(0xc001001b)).toBe('wrmsr-other');
  });

  it('classifies MTRRs (variable 0x200–0x21F, fixed 0x250/0x258/0x259/0x268–0x26F, default 0x2FF) as wrmsr-mtrr', () => {
    expect(classifyMsr('MTRR')).toBe('wrmsr-mtrr');
    for (const n of [0x200, 0x20f, 0x21f, 0x250, 0x258, 0x259, 0x268, 0x26f, 0x2ff])
      expect(classifyMsr(n), n.toString(16)).toBe('wrmsr-mtrr');
    for (const n of [0x1ff, 0x220, 0x24f, 0x251, 0x257, 0x25a, 0x267, 0x270, 0x2fe, 0x300])
      expect(classifyMsr(n), n.toString(16)).not.toBe('wrmsr-mtrr');
  });

  it('classifies PRED_CMD as an IBPB and EFER as efer, by name and number', () => {
    expect(classifyMsr('PRED_CMD')).toBe('ibpb');
    expect(classifyMsr(0x49)).toBe('ibpb');
    expect(classifyMsr('EFER')).toBe('efer');
    expect(classifyMsr(0xc0000080)).toBe('efer');
  });

  it('classifies anything else as wrmsr-other', () => {
    expect(classifyMsr('SPEC_CTRL')).toBe('wrmsr-other');
    expect(classifyMsr(0x48)).toBe('wrmsr-other');
    expect(classifyMsr(0x10)).toBe('wrmsr-other');
    expect(classifyMsr('NOT_AN_MSR')).toBe('wrmsr-other');
  });
});
