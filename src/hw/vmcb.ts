/**
 * The parts of an SVM VMCB that matter to the RAP and the TLB (APM Vol. 2, Appendix B). The
 * 64-bit field at offset 058h holds ASID (31:0), TLB_CONTROL (39:32), ALLOW_LARGER_RAP (bit 40)
 * and CLEAR_RAP (bit 41); Linux calls bits 40/41 `erap_ctl` bits 0/1 (docs/domain.md §2).
 * Whether the CPU resets CLEAR_RAP itself is undocumented; KVM resets it after every VMRUN.
 */
export interface Vmcb {
  /** Which VMCB this is, in KVM's names: vmcb01 (L1 run by L0), vmcb02 (L2 run by L0), vmcb12 (L2 as L1 wrote it). */
  name: 'vmcb01' | 'vmcb02' | 'vmcb12';
  asid: number;
  tlbControl: TlbControl;
  erapCtl: { allowLargerRap: boolean; clearRap: boolean };
  intercepts: Intercepts;
  npt: boolean;
}

/** TLB_CONTROL encodings (APM Table 15-9). */
export const TLB_CONTROL = {
  DO_NOTHING: 0,
  FLUSH_ALL: 1,
  FLUSH_ASID: 3,
  FLUSH_ASID_LOCAL: 7,
} as const;
export type TlbControl = (typeof TLB_CONTROL)[keyof typeof TLB_CONTROL];

/** The intercept bits rapsim models. CR4 writes are always intercepted on SVM (non-SEV-ES). */
export interface Intercepts {
  cr3Write: boolean;
  cr4Write: boolean;
  cr0Write: boolean;
  invpcid: boolean;
  invlpg: boolean;
  /** WRMSR to MSRs not passed through (KVM passes SPEC_CTRL and PRED_CMD through). */
  wrmsr: boolean;
  hlt: boolean;
  vmrun: boolean;
}

/** The 64-bit word at VMCB offset 058h, for tests and traces. */
export function encodeTlbCtlWord(v: Pick<Vmcb, 'asid' | 'tlbControl' | 'erapCtl'>): bigint {
  return (
    BigInt(v.asid >>> 0) |
    (BigInt(v.tlbControl) << 32n) |
    (v.erapCtl.allowLargerRap ? 1n << 40n : 0n) |
    (v.erapCtl.clearRap ? 1n << 41n : 0n)
  );
}

/** Inverse of {@link encodeTlbCtlWord}. */
export function decodeTlbCtlWord(w: bigint): Pick<Vmcb, 'asid' | 'tlbControl' | 'erapCtl'> {
  return {
    asid: Number(w & 0xffff_ffffn),
    tlbControl: Number((w >> 32n) & 0xffn) as TlbControl,
    erapCtl: { allowLargerRap: ((w >> 40n) & 1n) === 1n, clearRap: ((w >> 41n) & 1n) === 1n },
  };
}
