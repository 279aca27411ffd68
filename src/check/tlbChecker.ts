import { formatDuration, type Time, toNs } from '../actors/time.js';
import { decodeContext } from '../hw/context.js';
import type {
  ShootdownCompleteObs,
  ShootdownDeferredObs,
  ShootdownStartObs,
  TlbStaleUseObs,
} from '../hw/observations.js';
import type { Violation } from './violation.js';

interface Completed {
  id: string;
  /** Who initiated it, as reports name it. */
  initiator: string;
  changedAt: Time;
  completedAt: Time;
}

/** How a shootdown skipped a target, as a violation explains it. */
const SKIPPED_HOW: Record<ShootdownDeferredObs['path'], string> = {
  pv: 'PV TLB flush skipped it while it was preempted (KVM_VCPU_FLUSH_TLB set in its steal-time area)',
  hyperv: 'the Hyper-V flush hypercall queued the flush in its FIFO',
  lazy: 'the shootdown skipped it while it was idle in lazy TLB mode (should_flush_tlb)',
  'other-mm': 'the shootdown skipped it while it ran another address space (should_flush_tlb: loaded_mm)',
};

/** Who owed the skipped target its flush. */
const SKIPPED_OWED: Record<ShootdownDeferredObs['path'], string> = {
  pv: 'the host is to flush before its next entry',
  hyperv: 'the host is to flush before its next entry',
  lazy: 'it is to flush when it leaves lazy TLB mode (switch_mm_irqs_off sees tlb_gen moved)',
  'other-mm':
    'it is to flush when it switches back to the address space (switch_mm_irqs_off sees tlb_gen moved)',
};

/**
 * `tlb-stale` (docs/domain.md §5): once a shootdown's initiator has seen every acknowledgement,
 * no CPU may use a translation of the shot-down pages that was filled before the change. Uses
 * during the shootdown are legal (the protocol has not promised anything yet).
 */
export class TlbChecker {
  private readonly completed = new Map<string, Completed[]>();
  private readonly started = new Map<string, ShootdownStartObs>();
  private readonly found = new Map<string, Violation>();

  /** `vmName` names a VM index in reports. */
  constructor(private readonly vmName: (vm: number) => string = (vm) => `vm${vm}`) {}

  /**
   * Shootdown id → the targets it skipped (their flush left to the host, or to the target when it
   * leaves lazy TLB mode), with when and how.
   */
  private readonly deferred = new Map<
    string,
    { t: Time; pcpu: number; ctx: number; path: ShootdownDeferredObs['path'] }[]
  >();

  onDeferred(t: Time, o: ShootdownDeferredObs): void {
    const list = this.deferred.get(o.id) ?? [];
    list.push({ t, pcpu: o.pcpu, ctx: o.ctx, path: o.path });
    this.deferred.set(o.id, list);
  }

  onStart(_t: Time, o: ShootdownStartObs): void {
    this.started.set(o.id, o);
  }

  onComplete(t: Time, o: ShootdownCompleteObs): void {
    for (const page of o.pages) {
      const k = `${o.vm ?? 'host'}:${o.pcid}:${page}`;
      const list = this.completed.get(k) ?? [];
      const initiator = o.vm === null ? `pCPU ${o.pcpu}` : `a ${this.vmName(o.vm)} vCPU on pCPU ${o.pcpu}`;
      list.push({ id: o.id, initiator, changedAt: o.changedAt, completedAt: t });
      this.completed.set(k, list);
    }
    this.started.delete(o.id);
  }

  onStaleUse(t: Time, o: TlbStaleUseObs): void {
    const list = this.completed.get(`${o.vm ?? 'host'}:${o.pcid}:${o.page}`) ?? [];
    const sd = list.find((c) => c.changedAt > o.filledAt && c.completedAt <= t);
    if (!sd) return;
    const key = `${o.pcpu}|${o.ctx}|${o.pcid}|${o.page}|${sd.id}`;
    const seen = this.found.get(key);
    if (seen) {
      seen.occurrences++;
      return;
    }
    const c = decodeContext(o.ctx);
    const who = {
      world: c.world,
      vm: c.world === 'host' ? null : this.vmName(c.vm),
      vcpu: c.world === 'host' ? null : c.view,
      level: c.level,
      process: o.pcid - 1,
    };
    const where = c.world === 'host' ? `pCPU ${o.pcpu}` : `${who.vm} vCPU ${c.view} (on pCPU ${o.pcpu})`;
    // A target the shootdown skipped: the host (or the target itself, leaving lazy TLB mode) owed it a flush.
    const skipped = (this.deferred.get(sd.id) ?? []).find((d) => {
      const x = decodeContext(d.ctx);
      // Bare metal: the same core; a guest: the same vCPU, wherever it runs now.
      if (x.world === 'host' || c.world === 'host') return x.world === c.world && d.pcpu === o.pcpu;
      return x.world === c.world && x.vm === c.vm && x.view === c.view;
    });
    const how = skipped ? SKIPPED_HOW[skipped.path] : '';
    const owed = skipped ? SKIPPED_OWED[skipped.path] : '';
    this.found.set(key, {
      property: 'tlb-stale',
      atNs: toNs(t),
      pcpu: o.pcpu,
      consumer: who,
      producer: { ...who, atNs: toNs(o.filledAt) },
      promise: `shootdown ${sd.id} of page ${o.page} (PCID ${o.pcid}) completed`,
      because: `${sd.initiator} saw every acknowledgement at ${formatDuration(sd.completedAt)}, but ${where} still held the translation filled at ${formatDuration(o.filledAt)}, before the change at ${formatDuration(sd.changedAt)}${
        skipped ? `: ${how}, and no flush of it reached the TLB before this use` : ''
      }`,
      events: [
        `${formatDuration(o.filledAt)} ${where}: TLB fill of page ${o.page} (PCID ${o.pcid})`,
        `${formatDuration(sd.changedAt)} ${sd.initiator}: page tables changed, shootdown ${sd.id} begins`,
        ...(skipped ? [`${formatDuration(skipped.t)} ${where}: ${how}; ${owed}`] : []),
        `${formatDuration(sd.completedAt)} ${sd.initiator}: shootdown ${sd.id} complete`,
        `${formatDuration(t)} ${where}: stale translation used`,
      ],
      occurrences: 1,
    });
  }

  violations(): Violation[] {
    return [...this.found.values()];
  }
}
