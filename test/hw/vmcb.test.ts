import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTlbCtlWord, encodeTlbCtlWord, TLB_CONTROL, type TlbControl } from '../../src/hw/vmcb.js';

/**
 * docs/domain.md §2 "VMCB control": the 64-bit field at VMCB offset 058h holds ASID (31:0),
 * TLB_CONTROL (39:32), ALLOW_LARGER_RAP (bit 40) and CLEAR_RAP (bit 41); Linux's erap_ctl
 * bits 0/1 are bits 40/41.
 */
const ALLOW_LARGER_RAP_BIT = 1n << 40n;
const CLEAR_RAP_BIT = 1n << 41n;

function word(asid: number, tlbControl: number, allowLargerRap: boolean, clearRap: boolean): bigint {
  return encodeTlbCtlWord({
    asid,
    tlbControl: tlbControl as TlbControl,
    erapCtl: { allowLargerRap, clearRap },
  });
}

const fields = fc.record({
  asid: fc.integer({ min: 0, max: 0xffff_ffff }),
  tlbControl: fc.constantFrom<TlbControl>(
    TLB_CONTROL.DO_NOTHING,
    TLB_CONTROL.FLUSH_ALL,
    TLB_CONTROL.FLUSH_ASID,
    TLB_CONTROL.FLUSH_ASID_LOCAL,
  ),
  erapCtl: fc.record({ allowLargerRap: fc.boolean(), clearRap: fc.boolean() }),
});

describe('VMCB offset 058h word (TLB_CONTROL / erap_ctl)', () => {
  it('has the APM TLB_CONTROL encodings', () => {
    expect(TLB_CONTROL).toEqual({ DO_NOTHING: 0, FLUSH_ALL: 1, FLUSH_ASID: 3, FLUSH_ASID_LOCAL: 7 });
  });

  it('puts ASID in bits 31:0 and nothing else', () => {
    expect(word(0, 0, false, false)).toBe(0n);
    expect(word(1, 0, false, false)).toBe(1n);
    expect(word(0xffff_ffff, 0, false, false)).toBe(0xffff_ffffn);
    expect(word(0x8000_0000, 0, false, false)).toBe(0x8000_0000n);
  });

  it('puts TLB_CONTROL in bits 39:32', () => {
    expect(word(0, 1, false, false)).toBe(0x1_0000_0000n);
    expect(word(0, 3, false, false)).toBe(0x3_0000_0000n);
    expect(word(0, 7, false, false)).toBe(0x7_0000_0000n);
    expect(word(0, 0xff, false, false)).toBe(0xff_0000_0000n);
    // Bits 39:32 exactly: the highest TLB_CONTROL bit is bit 39, below ALLOW_LARGER_RAP.
    expect(word(0, 0x80, false, false)).toBe(1n << 39n);
  });

  it('puts ALLOW_LARGER_RAP in bit 40 and CLEAR_RAP in bit 41 (erap_ctl bits 0/1)', () => {
    expect(word(0, 0, true, false)).toBe(ALLOW_LARGER_RAP_BIT);
    expect(word(0, 0, false, true)).toBe(CLEAR_RAP_BIT);
    expect(word(0, 0, true, true)).toBe(ALLOW_LARGER_RAP_BIT | CLEAR_RAP_BIT);
    const w = word(0xdead_beef, 3, true, true);
    expect(w).toBe(0x3_0000_0000n | 0xdead_beefn | ALLOW_LARGER_RAP_BIT | CLEAR_RAP_BIT);
    // Linux's erap_ctl byte: bit 0 ALLOW_LARGER_RAP, bit 1 CLEAR_RAP.
    expect((word(0, 0, true, false) >> 40n) & 3n).toBe(1n);
    expect((word(0, 0, false, true) >> 40n) & 3n).toBe(2n);
    // Nothing above bit 41.
    expect(w >> 42n).toBe(0n);
  });

  it('decodes each field from its own bits', () => {
    expect(decodeTlbCtlWord(ALLOW_LARGER_RAP_BIT)).toEqual({
      asid: 0,
      tlbControl: 0,
      erapCtl: { allowLargerRap: true, clearRap: false },
    });
    expect(decodeTlbCtlWord(CLEAR_RAP_BIT)).toEqual({
      asid: 0,
      tlbControl: 0,
      erapCtl: { allowLargerRap: false, clearRap: true },
    });
    expect(decodeTlbCtlWord(0x3_0000_0007n)).toEqual({
      asid: 7,
      tlbControl: 3,
      erapCtl: { allowLargerRap: false, clearRap: false },
    });
    expect(decodeTlbCtlWord(0xffff_ffffn).asid).toBe(0xffff_ffff);
  });

  it('round-trips every field combination (decode ∘ encode = id)', () => {
    fc.assert(
      fc.property(fields, (f) => {
        expect(decodeTlbCtlWord(encodeTlbCtlWord(f))).toEqual(f);
      }),
    );
  });

  it('round-trips every word of bits 41:0 (encode ∘ decode = id)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 42n) - 1n }), (w) => {
        expect(encodeTlbCtlWord(decodeTlbCtlWord(w))).toBe(w);
      }),
    );
  });

  it('keeps fields independent: changing one never changes another', () => {
    fc.assert(
      fc.property(fields, fc.boolean(), fc.boolean(), (f, a, c) => {
        const g = { ...f, erapCtl: { allowLargerRap: a, clearRap: c } };
        const wf = encodeTlbCtlWord(f);
        const wg = encodeTlbCtlWord(g);
        // ASID and TLB_CONTROL bits (39:0) unchanged by erap_ctl.
        expect(wf & ((1n << 40n) - 1n)).toBe(wg & ((1n << 40n) - 1n));
        expect((wg & ALLOW_LARGER_RAP_BIT) !== 0n).toBe(a);
        expect((wg & CLEAR_RAP_BIT) !== 0n).toBe(c);
      }),
    );
  });
});
