import type { Stream } from '../actors/prng.js';
import type { Time } from '../actors/time.js';
import { classifyMsr } from './msr.js';
import { Rap } from './rap.js';
import { MICROARCH_ELIGIBLE, promises, type RapAction, type SpecVariant, tagsHostGuest } from './spec.js';
import type { Timing } from './timing.js';
import { Tlb } from './tlb.js';
import { TLB_CONTROL, type Vmcb } from './vmcb.js';

/** An integer probability. */
export interface Ratio {
  num: number;
  den: number;
}

/** Parameters of one physical core (declared as data, SST-style). */
export interface CoreParams {
  index: number;
  socket: number;
  spec: SpecVariant;
  rapEntries: number;
  /** Ratio of microarch-eligible events on which this silicon also clears the RAP. */
  microarchClears: Ratio;
  /** Zen 4+ (CPUID 8000_0008_EBX[30] IBPB_RET): IBPB also clears the RAP. */
  ibpbClearsRap: boolean;
  timing: Timing;
}

export type Cr4Bit = 'pge' | 'pse' | 'pae' | 'pcide' | 'pke' | 'smep';
export type Cr0Bit = 'pg' | 'wp';
export type BitOp = 'set' | 'clear' | 'toggle';

/** What an architectural action did to the RAP: the facts a checker needs to explain a violation. */
export interface RapEffect {
  action: RapAction | 'ibpb';
  /** The spec promises a clear for this action. */
  promised: boolean;
  /** The hardware cleared the RAP (promise, or a microarchitectural extra). */
  cleared: boolean;
  /** The clear was an unpromised microarchitectural extra. */
  microarch: boolean;
}

/**
 * The hardware of one physical core: its RAP and TLB as data structures (the per-instruction hot
 * path never goes through xstate), control registers, and the RAP semantics of each
 * architectural action per the spec variant (docs/domain.md §2). The core executes the promise
 * plus the microarchitectural extras; judging belongs to the checkers.
 */
export class CoreHw {
  /** The RAP as host mode sees it. */
  readonly rapHost: Rap;
  /**
   * The RAP as guest mode sees it. With ERAPS host- and guest-pushed entries are not used across
   * the boundary (APM §3.2.9), modelled as two stacks; legacy hardware has one stack for both.
   */
  readonly rapGuest: Rap;
  readonly tlb = new Tlb();
  /** Host or guest mode (SVM): which RAP the core's CALLs and RETs use. */
  mode: 'host' | 'guest' = 'host';
  /** ASID of the running world (0 for the host). */
  asid = 0;
  /**
   * Counter of actions on this core that some context may believe cleared the RAP (actions the
   * spec promises, stuffing, IBPB). Entries remember it at push; a RET that uses an entry from an
   * older candidate epoch (or another context) is reported to the checkers, which decide whether
   * a promise covered it. A cheap, judgement-free filter.
   */
  candidateEpoch = 0;
  readonly clears: Record<string, number> = {};
  readonly cr4: Record<Cr4Bit, boolean> = {
    pge: true,
    pse: true,
    pae: true,
    pcide: true,
    pke: false,
    smep: true,
  };
  readonly cr0: Record<Cr0Bit, boolean> = { pg: true, wp: true };
  pcid = 0;
  /** CALLs executed by software stuffing sequences on this core. */
  stuffingCalls = 0;

  constructor(
    readonly params: CoreParams,
    private readonly rng: Stream,
  ) {
    this.rapHost = new Rap(params.rapEntries);
    this.rapGuest = tagsHostGuest(params.spec) ? new Rap(params.rapEntries) : this.rapHost;
  }

  /** The RAP of the current mode. */
  get rap(): Rap {
    return this.mode === 'host' ? this.rapHost : this.rapGuest;
  }

  /** TLB tag of a PCID in the running world (see Tlb). */
  space(pcid: number): number {
    return this.asid * 4096 + pcid;
  }

  get timing(): Timing {
    return this.params.timing;
  }

  /** Hardware clear of the RAP, counted by cause. */
  clearRap(cause: string): void {
    // The RAP is one physical structure: a clear empties it for both modes.
    this.rapHost.clear();
    this.rapGuest.clear();
    this.clears[cause] = (this.clears[cause] ?? 0) + 1;
  }

  /** Applies an action's RAP semantics: the promise, then a microarch extra on eligible events. */
  rapEffect(action: RapAction): RapEffect {
    const promised = promises(this.params.spec, action);
    // Only an action the spec promises can be a clear some context believes in (docs/domain.md
    // §5), so only those start a new candidate epoch; the checkers decide whose belief it is.
    if (promised) this.candidateEpoch++;
    let microarch = false;
    if (!promised && MICROARCH_ELIGIBLE.has(action)) {
      const { num, den } = this.params.microarchClears;
      microarch = num > 0 && this.rng.chance(num, den);
    }
    const cleared = promised || microarch;
    if (cleared) this.clearRap(microarch ? `microarch:${action}` : action);
    return { action, promised, cleared, microarch };
  }

  /** MOV CR3: switches PCID; flushes that PCID's TLB entries unless NOFLUSH (bit 63). */
  movCr3(pcid: number, noflush: boolean): { cost: Time; effect: RapEffect } {
    this.pcid = pcid;
    // With CR4.PCIDE clear every MOV CR3 flushes all non-global translations of this world (the
    // model keeps no global pages); with PCIDs it flushes the loaded PCID unless NOFLUSH is set.
    if (!this.cr4.pcide) this.tlb.flushAsid(this.asid);
    else if (!noflush) this.tlb.flushPcid(this.space(pcid));
    return { cost: this.timing.cr3Reload, effect: this.rapEffect('mov-cr3') };
  }

  /** INVPCID type 0 (address), 1 (single context), 2 (all incl. global), 3 (all non-global). */
  invpcid(type: 0 | 1 | 2 | 3, pcid: number, page: number): { cost: Time; effect: RapEffect } {
    if (type === 0) this.tlb.flushPage(this.space(pcid), page);
    else if (type === 1) this.tlb.flushPcid(this.space(pcid));
    else this.tlb.flushAsid(this.asid);
    const cost = type >= 2 ? this.timing.invpcidAll : this.timing.invlpg;
    return { cost, effect: this.rapEffect(`invpcid-${type}` as RapAction) };
  }

  invlpg(pcid: number, page: number): { cost: Time; effect: RapEffect } {
    this.tlb.flushPage(this.space(pcid), page);
    return { cost: this.timing.invlpg, effect: this.rapEffect('invlpg') };
  }

  /**
   * INVLPGA (host mode): invalidates one page of a guest ASID. KVM's svm_flush_tlb_gva uses it
   * for Hyper-V per-address flushes; it never clears the RAP (not in APM §5.5.3's list).
   */
  invlpga(asid: number, pcid: number, page: number): Time {
    this.tlb.flushPage(asid * 4096 + pcid, page);
    return this.timing.invlpg;
  }

  /** INVLPGB: broadcast invalidation; never promised to clear the RAP (AMD, 2025-12-11). */
  invlpgb(pcid: number, page: number): { cost: Time; effect: RapEffect } {
    this.tlb.flushPage(this.space(pcid), page);
    return { cost: this.timing.invlpg, effect: this.rapEffect('invlpgb') };
  }

  /**
   * MOV to CR4. APM §5.5.3: a change of PAE, PSE or PGE, PKE 0→1 and PCIDE 1→0 invalidate the
   * TLB implicitly, and so (APM 3.43 reading) clear the RAP. Other bits change nothing here.
   */
  writeCr4(bit: Cr4Bit, op: BitOp): { cost: Time; effect: RapEffect | undefined; changed: boolean } {
    const before = this.cr4[bit];
    const after = op === 'set' ? true : op === 'clear' ? false : !before;
    this.cr4[bit] = after;
    const changed = before !== after;
    let action: RapAction | undefined;
    if (changed && (bit === 'pae' || bit === 'pse' || bit === 'pge')) action = `cr4-${bit}`;
    else if (bit === 'pke' && !before && after) action = 'cr4-pke-set';
    else if (bit === 'pcide' && before && !after) action = 'cr4-pcide-clear';
    if (action) this.tlb.flushAsid(this.asid);
    const cost = bit === 'pge' && changed ? this.timing.cr4PgeToggle : this.timing.crWrite;
    return { cost, effect: action ? this.rapEffect(action) : undefined, changed };
  }

  /** MOV to CR0: a change of PG invalidates the TLB (APM §5.5.3); WP does not. */
  writeCr0(bit: Cr0Bit, op: BitOp): { cost: Time; effect: RapEffect | undefined; changed: boolean } {
    const before = this.cr0[bit];
    const after = op === 'set' ? true : op === 'clear' ? false : !before;
    this.cr0[bit] = after;
    const changed = before !== after;
    let effect: RapEffect | undefined;
    if (changed && bit === 'pg') {
      this.tlb.flushAsid(this.asid);
      effect = this.rapEffect('cr0-pg');
    } else if (changed) effect = this.rapEffect('cr0-wp');
    return { cost: this.timing.crWrite, effect, changed };
  }

  /** WRMSR: MTRRs invalidate the TLB; the listed MSRs are promised only by `eraps-apm`. */
  wrmsr(msr: string | number): { cost: Time; effect: RapEffect } {
    const kind = classifyMsr(msr);
    if (kind === 'ibpb') return this.ibpb();
    if (kind === 'wrmsr-mtrr') this.tlb.flushAsid(this.asid);
    return { cost: this.timing.wrmsr, effect: this.rapEffect(kind) };
  }

  /** IBPB: clears the RAP on Zen 4+ (IBPB_RET); older parts need a software RAP fill after it. */
  ibpb(): { cost: Time; effect: RapEffect } {
    this.candidateEpoch++;
    const cleared = this.params.ibpbClearsRap;
    if (cleared) this.clearRap('ibpb');
    return {
      cost: this.timing.ibpb,
      effect: { action: 'ibpb', promised: cleared, cleared, microarch: false },
    };
  }

  /** Interrupt delivery: eligible for a microarchitectural clear, never promised. */
  /** INIT: the core resets; APM §5.5.3 lists it among the implicit TLB invalidations. */
  init(): RapEffect {
    this.tlb.flushAsid(this.asid);
    return this.rapEffect('init');
  }

  interrupt(): RapEffect {
    return this.rapEffect('interrupt');
  }

  /**
   * VMRUN of `vmcb` (APM §15.5, docs/domain.md §2): enter guest mode with the VMCB's ASID; guest
   * mode uses the whole RAP only with ALLOW_LARGER_RAP, else 32 entries; TLB_CONTROL flushes;
   * CLEAR_RAP clears the RAP before the guest runs (on ERAPS hardware: legacy parts have no such
   * bit). A VMRUN that flushes the TLB is eligible for a microarchitectural clear.
   * Returns what happened to the RAP (undefined: VMRUN had no RAP meaning).
   */
  vmrun(v: Vmcb): { cost: Time; effect: RapEffect | undefined; tlbFlushed: boolean } {
    this.mode = 'guest';
    this.asid = v.asid;
    if (this.rapGuest !== this.rapHost) {
      this.rapGuest.setLimit(
        v.erapCtl.allowLargerRap ? this.params.rapEntries : Math.min(32, this.params.rapEntries),
      );
    }
    let tlbFlushed = false;
    if (v.tlbControl === TLB_CONTROL.FLUSH_ALL) {
      this.tlb.flushAll();
      tlbFlushed = true;
    } else if (v.tlbControl !== TLB_CONTROL.DO_NOTHING) {
      this.tlb.flushAsid(v.asid);
      tlbFlushed = true;
    }
    let effect: RapEffect | undefined;
    if (v.erapCtl.clearRap && tagsHostGuest(this.params.spec)) effect = this.rapEffect('vmrun-clear-rap');
    else if (tlbFlushed) effect = this.rapEffect('vmrun-tlb-flush');
    return { cost: Math.round(this.timing.vmrunVmexitRoundTrip / 2), effect, tlbFlushed };
  }

  /**
   * #VMEXIT: back to host mode. AutoIBRS clears the host's return stack on VMEXIT (Linux
   * Documentation/admin-guide/hw-vuln/rsb.rst): with ERAPS that is the host's tagged stack; on
   * legacy parts, the one shared stack.
   */
  vmexit(autoIbrs: boolean): { cost: Time } {
    this.mode = 'host';
    this.asid = 0;
    if (autoIbrs) {
      if (this.rapHost === this.rapGuest) this.clearRap('autoibrs-vmexit');
      else {
        this.rapHost.clear();
        this.clears['autoibrs-vmexit'] = (this.clears['autoibrs-vmexit'] ?? 0) + 1;
      }
    }
    return { cost: Math.round(this.timing.vmrunVmexitRoundTrip / 2) };
  }

  /** Software RAP stuffing: `calls` benign CALLs (Linux's FILL_RETURN_BUFFER). */
  stuff(calls: number, ctx: number, t: Time): Time {
    for (let i = 0; i < calls; i++) this.rap.push(-1, ctx, this.candidateEpoch, t, true);
    this.candidateEpoch++;
    this.stuffingCalls += calls;
    return Math.ceil((this.timing.rapStuff * calls) / 32);
  }
}
