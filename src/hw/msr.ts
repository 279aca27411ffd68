import type { RapAction } from './spec.js';

/**
 * MSRs by name and number, classified by what a WRMSR to them means for the RAP. The "listed"
 * MSRs are AMD's microarchitectural list (LKML 08826b5879e2d9c354424279763d3ce5556f44cc.camel@amd.com):
 * APIC_BASE, PREFETCH_CONTROL, SYSCFG, IORRs, TOM/TOM2, SMMADDR/MASK, ECS_BASE.
 */
export const MSR_NUMBERS: Readonly<Record<string, number>> = {
  APIC_BASE: 0x1b,
  SPEC_CTRL: 0x48,
  PRED_CMD: 0x49,
  MTRR: 0x2ff,
  EFER: 0xc0000080,
  SYSCFG: 0xc0010010,
  IORR: 0xc0010016,
  TOM: 0xc001001a,
  TOM2: 0xc001001d,
  SMMADDR: 0xc0010112,
  SMMMASK: 0xc0010113,
  PREFETCH_CONTROL: 0xc0000108,
  ECS_BASE: 0xc001102a,
};

const LISTED = new Set([
  'APIC_BASE',
  'PREFETCH_CONTROL',
  'SYSCFG',
  'IORR',
  'TOM',
  'TOM2',
  'SMMADDR',
  'SMMMASK',
  'ECS_BASE',
]);

/** Classifies a WRMSR target (name or number) as a RAP-relevant action, or 'ibpb' for PRED_CMD. */
export function classifyMsr(msr: string | number): RapAction | 'ibpb' {
  const name = typeof msr === 'string' ? msr.toUpperCase() : nameOf(msr);
  if (name === 'PRED_CMD') return 'ibpb';
  if (name === 'EFER') return 'efer';
  if (name === 'MTRR' || (typeof msr === 'number' && isMtrr(msr))) return 'wrmsr-mtrr';
  if (name !== undefined && LISTED.has(name)) return 'wrmsr-msrlist';
  if (typeof msr === 'number' && msr >= 0xc0010016 && msr <= 0xc0010019) return 'wrmsr-msrlist';
  return 'wrmsr-other';
}

function nameOf(n: number): string | undefined {
  for (const [k, v] of Object.entries(MSR_NUMBERS)) if (v === n) return k;
  return undefined;
}

/**
 * MTRRs (APM Vol. 2 §7.7): variable-range base/mask pairs from 0x200 (AMD implements 8 pairs; the
 * architectural range reaches 0x21F), fixed-range 0x250, 0x258, 0x259 and 0x268–0x26F, and
 * MTRRdefType 0x2FF.
 */
function isMtrr(n: number): boolean {
  return (
    (n >= 0x200 && n <= 0x21f) ||
    n === 0x250 ||
    n === 0x258 ||
    n === 0x259 ||
    (n >= 0x268 && n <= 0x26f) ||
    n === 0x2ff
  );
}
