import { formatDuration, type Time, toNs } from '../actors/time.js';
import type { ShootdownCompleteObs, ShootdownStartObs, TlbStaleUseObs } from '../hw/observations.js';
import type { Violation } from './violation.js';

interface Completed {
  id: string;
  initiator: number;
  changedAt: Time;
  completedAt: Time;
}

/**
 * `tlb-stale` (docs/domain.md §5): once a shootdown's initiator has seen every acknowledgement,
 * no CPU may use a translation of the shot-down pages that was filled before the change. Uses
 * during the shootdown are legal (the protocol has not promised anything yet).
 */
export class TlbChecker {
  private readonly completed = new Map<string, Completed[]>();
  private readonly started = new Map<string, ShootdownStartObs>();
  private readonly found = new Map<string, Violation>();

  onStart(_t: Time, o: ShootdownStartObs): void {
    this.started.set(o.id, o);
  }

  onComplete(t: Time, o: ShootdownCompleteObs): void {
    for (const page of o.pages) {
      const k = `${o.pcid}:${page}`;
      const list = this.completed.get(k) ?? [];
      list.push({ id: o.id, initiator: o.pcpu, changedAt: o.changedAt, completedAt: t });
      this.completed.set(k, list);
    }
    this.started.delete(o.id);
  }

  onStaleUse(t: Time, o: TlbStaleUseObs): void {
    const list = this.completed.get(`${o.pcid}:${o.page}`) ?? [];
    const sd = list.find((c) => c.changedAt > o.filledAt && c.completedAt <= t);
    if (!sd) return;
    const key = `${o.pcpu}|${o.pcid}|${o.page}|${sd.id}`;
    const seen = this.found.get(key);
    if (seen) {
      seen.occurrences++;
      return;
    }
    const process = o.pcid - 1;
    this.found.set(key, {
      property: 'tlb-stale',
      atNs: toNs(t),
      pcpu: o.pcpu,
      consumer: { world: 'host', vm: null, vcpu: null, level: 0, process },
      producer: { world: 'host', vm: null, vcpu: null, level: 0, process, atNs: toNs(o.filledAt) },
      promise: `shootdown ${sd.id} of page ${o.page} (PCID ${o.pcid}) completed`,
      because: `pCPU ${sd.initiator} saw every acknowledgement at ${formatDuration(sd.completedAt)}, but pCPU ${o.pcpu} still held the translation filled at ${formatDuration(o.filledAt)}, before the change at ${formatDuration(sd.changedAt)}`,
      events: [
        `${formatDuration(o.filledAt)} pCPU ${o.pcpu}: TLB fill of page ${o.page} (PCID ${o.pcid})`,
        `${formatDuration(sd.changedAt)} pCPU ${sd.initiator}: page tables changed, shootdown ${sd.id} begins`,
        `${formatDuration(sd.completedAt)} pCPU ${sd.initiator}: shootdown ${sd.id} complete`,
        `${formatDuration(t)} pCPU ${o.pcpu}: stale translation used`,
      ],
      occurrences: 1,
    });
  }

  violations(): Violation[] {
    return [...this.found.values()];
  }
}
