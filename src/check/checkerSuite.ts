import type { Observation } from '../actors/types.js';
import {
  type ActionObs,
  ObsKind,
  type RapUseObs,
  type ShootdownCompleteObs,
  type ShootdownDeferredObs,
  type ShootdownStartObs,
  type StuffObs,
  type TlbStaleUseObs,
  type VmrunObs,
} from '../hw/observations.js';
import { RapChecker, type RapCheckerConfig } from './rapChecker.js';
import { TlbChecker } from './tlbChecker.js';
import { ADVISORY, PROPERTIES, type Property, type Violation } from './violation.js';

/** How many distinct violations a report lists in full (the counts cover all of them). */
export const VIOLATIONS_LISTED = 200;

/**
 * All property checkers, fed the observations in global key order (the window loop sorts each
 * window's observations). Checkers live apart from the models and never steer them.
 */
export class CheckerSuite {
  private readonly rap: RapChecker;
  private readonly tlb: TlbChecker;

  constructor(cfg: RapCheckerConfig) {
    this.rap = new RapChecker(cfg);
    this.tlb = new TlbChecker(cfg.vmName);
  }

  observe(batch: readonly Observation[]): void {
    for (const o of batch) {
      switch (o.kind) {
        case ObsKind.RAP_USE:
          this.rap.onRapUse(o.t, o.data as RapUseObs);
          break;
        case ObsKind.ACTION:
          this.rap.onAction(o.t, o.data as ActionObs);
          break;
        case ObsKind.STUFF:
          this.rap.onStuff(o.t, o.data as StuffObs);
          break;
        case ObsKind.SHOOTDOWN_START:
          this.tlb.onStart(o.t, o.data as ShootdownStartObs);
          break;
        case ObsKind.SHOOTDOWN_DEFERRED:
          this.tlb.onDeferred(o.t, o.data as ShootdownDeferredObs);
          break;
        case ObsKind.SHOOTDOWN_COMPLETE:
          this.tlb.onComplete(o.t, o.data as ShootdownCompleteObs);
          break;
        case ObsKind.VMRUN:
          this.rap.onVmrun(o.t, o.data as VmrunObs);
          break;
        case ObsKind.TLB_STALE_USE:
          this.tlb.onStaleUse(o.t, o.data as TlbStaleUseObs);
          break;
        default:
          break;
      }
    }
  }

  /** Every distinct violation, ordered by time of first appearance, then property. */
  violations(): Violation[] {
    return [...this.rap.violations(), ...this.tlb.violations()].sort(
      (a, b) => a.atNs - b.atNs || a.pcpu - b.pcpu || a.property.localeCompare(b.property),
    );
  }

  /** Occurrences per property (all of them, not only the listed ones). */
  counts(): Record<Property, number> {
    const out = Object.fromEntries(PROPERTIES.map((p) => [p, 0])) as Record<Property, number>;
    for (const v of this.violations()) out[v.property] += v.occurrences;
    return out;
  }

  /** Properties that fail the run (advisory ones do not). */
  failing(): Property[] {
    return [...new Set(this.violations().map((v) => v.property))].filter((p) => !ADVISORY.has(p));
  }
}
