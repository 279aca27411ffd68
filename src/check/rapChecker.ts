import { formatDuration, type Time, toNs } from '../actors/time.js';
import { decodeContext, encodeContext, KERNEL_PROCESS, type RapContext } from '../hw/context.js';
import type { ActionObs, RapUseObs, StuffObs, VmrunObs } from '../hw/observations.js';
import { describeAction, promises, type RapAction, type SpecVariant, tagsHostGuest } from '../hw/spec.js';
import type { ContextRef, Property, Violation } from './violation.js';

/** What a view (a CPU as its contexts see it) reads from its CPUID. */
export interface ViewCpuid {
  eraps: boolean;
  /** RAP entries the view believes it has: RapSize×8 with ERAPS, else 32. */
  rapEntries: number;
}

export interface RapCheckerConfig {
  spec: SpecVariant;
  /** CPUID of the view an encoded context belongs to. */
  cpuidOf: (ctx: number) => ViewCpuid;
  /** For an L2 VM: the index of the L1 that runs it. */
  nestedParent?: (vm: number) => number | undefined;
  /** VM names by index, for reports. */
  vmName: (vm: number) => string;
}

/** A clear the view believed in (docs/domain.md §5 (a) or (b)). */
interface Belief {
  t: Time;
  promise: string;
  /** Formatted when needed: it may name the next VMRUN, which comes after the belief. */
  because: () => string;
  /** Formatted only when a violation needs it: the checker sees every action of the run. */
  event: () => string;
}

/** Recent RAP-relevant actions of a view that promised nothing, to explain advisory findings. */
interface Unpromised {
  t: Time;
  event: () => string;
}

const RECENT = 16;

/**
 * Judges every reported RET against the promises of docs/domain.md §5: host/guest separation,
 * promised clears (by the spec for an action the context executed, or by a stuffing sequence
 * sized by its own CPUID), and, advisory, cross-context use that no promise covered. Observes
 * the trace only. Identical findings (same property, consumer, producer and cause) are folded
 * into one violation with an occurrence count, in order of first appearance.
 */
export class RapChecker {
  private readonly beliefs = new Map<number, Belief[]>();
  private readonly unpromised = new Map<number, Unpromised[]>();
  private readonly found = new Map<string, Violation>();
  /** VMRUNs into each guest view, in time order (to explain why no CLEAR_RAP came). */
  private readonly vmruns = new Map<number, { t: Time; o: VmrunObs }[]>();

  constructor(private readonly cfg: RapCheckerConfig) {}

  onAction(t: Time, o: ActionObs): void {
    const view = viewOf(o.ctx);
    const cpuid = this.cfg.cpuidOf(o.ctx);
    const action = o.action;
    const promised = action !== 'ibpb' && cpuid.eraps && promises(this.cfg.spec, action as RapAction);
    const name = action === 'ibpb' ? 'IBPB' : describeAction(action);
    const how = `${o.handling}${o.detail ? `: ${o.detail}` : ''}`;
    const event = (): string =>
      `${formatDuration(t)} pCPU ${o.pcpu} ${this.ctxName(o.ctx)}: ${name} (${how}); hardware ${o.cleared ? (o.microarch ? 'cleared the RAP (microarchitectural extra)' : 'cleared the RAP') : 'did not clear the RAP'}`;
    if (promised) {
      const because = (): string => {
        if (o.cleared)
          return `${name} was executed natively and the hardware cleared the RAP, yet the entry survived`;
        if (o.handling === 'native')
          return `${name} was executed natively (${o.detail}); the hardware did not clear the RAP`;
        return `${name} was ${o.handling} (${o.detail}); ${this.nextVmrun(view, t)}`;
      };
      push(this.beliefs, view, { t, promise: `${name} (${this.cfg.spec})`, because, event });
    } else {
      const list = this.unpromised.get(view) ?? [];
      const spec = this.cfg.spec;
      list.push({
        t,
        event: () => `${event()}; ${spec} promises no clear${cpuid.eraps ? '' : ' (CPUID shows no ERAPS)'}`,
      });
      if (list.length > RECENT) list.shift();
      this.unpromised.set(view, list);
    }
  }

  onStuff(t: Time, o: StuffObs): void {
    const view = viewOf(o.ctx);
    const believed = this.cfg.cpuidOf(o.ctx).rapEntries;
    const event = (): string =>
      `${formatDuration(t)} pCPU ${o.pcpu} ${this.ctxName(o.ctx)}: RAP stuffing, ${o.calls} CALLs (the RAP holds ${o.rapEntries})`;
    if (o.calls >= believed) {
      const short = o.calls < o.rapEntries;
      push(this.beliefs, view, {
        t,
        promise: `RAP stuffing of ${o.calls} CALLs, sized by CPUID (${believed} entries)`,
        because: () =>
          short
            ? `the stuffing was sized by CPUID (${believed} entries) but the RAP holds ${o.rapEntries}: ${o.rapEntries - o.calls} older entries survived beneath the stuffed ones`
            : 'the stuffing overwrote the whole RAP, yet the entry survived',
        event,
      });
    } else {
      const list = this.unpromised.get(view) ?? [];
      list.push({
        t,
        event: () => `${event()}; shorter than the ${believed} entries CPUID reports, so nothing is promised`,
      });
      if (list.length > RECENT) list.shift();
      this.unpromised.set(view, list);
    }
  }

  onRapUse(t: Time, o: RapUseObs): void {
    const consumer = decodeContext(o.consumer);
    const producer = decodeContext(o.producer);
    const use = (): string =>
      `${formatDuration(t)} pCPU ${o.pcpu} ${this.ctxName(o.consumer)}: RET used the entry (${o.predicted ? 'predicted' : 'mispredicted'})`;
    const pushEv = (): string =>
      `${formatDuration(o.pushedAt)} pCPU ${o.pcpu} ${this.ctxName(o.producer)}: CALL pushed the entry`;
    if (consumer.world !== producer.world && tagsHostGuest(this.cfg.spec)) {
      this.report('rap-host-guest', t, o, {
        promise: `host/guest RAP tagging (${this.cfg.spec}, APM §3.2.9)`,
        because: `a ${consumer.world}-mode RET used a ${producer.world}-pushed entry, which ERAPS tagging forbids`,
        events: () => [pushEv(), use()],
        key: 'tag',
      });
      return;
    }
    // Nested SVM: L1 and L2 share the hardware's guest tag. Where L1 was given ERAPS, from
    // L1's view it is the host and L2 the guest, so a use across the two levels breaks the
    // separation L1 was promised (docs/domain.md §5, rap-nested).
    if (consumer.world === 'guest' && producer.world === 'guest' && consumer.level !== producer.level) {
      const l1 = this.nestingL1(consumer, producer);
      if (l1 !== undefined && this.cfg.cpuidOf(l1).eraps) {
        this.report('rap-nested', t, o, {
          promise: `L1 was given ERAPS: its L2 (guest) and itself (host) do not share RAP entries (${this.cfg.spec})`,
          because: `an L${consumer.level} RET used an L${producer.level}-pushed entry: L1 and L2 share the hardware's guest tag, and no CLEAR_RAP at the nested VMRUN / #VMEXIT removed it (${this.nextVmrun(viewOf(o.consumer), o.pushedAt)})`,
          events: () => [pushEv(), use()],
          key: 'nested',
        });
        return;
      }
    }
    // A clear the consumer believed in covers every entry pushed before it, whoever pushed it.
    const belief = this.firstBeliefAfter(viewOf(o.consumer), o.pushedAt, t);
    if (belief) {
      this.report('rap-promised-clear', t, o, {
        promise: belief.promise,
        because: belief.because(),
        events: () => [pushEv(), belief.event(), use()],
        key: `${belief.t}`,
      });
      return;
    }
    if (consumer.world !== producer.world) {
      this.crossContext(
        t,
        o,
        pushEv,
        use,
        'legacy hardware does not tag host and guest entries, and no believed clear came between',
      );
      return;
    }
    if (o.consumer !== o.producer) this.crossContext(t, o, pushEv, use, undefined);
  }

  onVmrun(t: Time, o: VmrunObs): void {
    push(this.vmruns, viewOf(o.ctx), { t, o });
  }

  /** Why the first VMRUN into `view` after `t` did not clear the RAP (or that none came). */
  private nextVmrun(view: number, t: Time): string {
    const next = (this.vmruns.get(view) ?? []).find((v) => v.t >= t);
    if (!next) return 'no VMRUN followed before the RET, so no clear reached the hardware';
    const when = formatDuration(next.t);
    if (next.o.cleared) return `the VMRUN at ${when} cleared the RAP`;
    if (next.o.clearRap) return `the VMRUN at ${when} had CLEAR_RAP set but the hardware has no ERAPS`;
    return `the next VMRUN (${when}, ${next.o.vmcb}) had no CLEAR_RAP, so no clear reached the hardware: ${next.o.why}`;
  }

  /** The encoded L1 context of a pair of contexts that are an L1 and one of its L2s. */
  private nestingL1(a: RapContext, b: RapContext): number | undefined {
    const parent = this.cfg.nestedParent;
    if (!parent) return undefined;
    const [l1, l2] = a.level < b.level ? [a, b] : [b, a];
    if (parent(l2.vm) !== l1.vm) return undefined;
    return encodeContext({ ...l1, process: KERNEL_PROCESS });
  }

  /** Violations in order of first appearance. */
  violations(): Violation[] {
    return [...this.found.values()];
  }

  private crossContext(
    t: Time,
    o: RapUseObs,
    pushEv: () => string,
    use: () => string,
    reason: string | undefined,
  ): void {
    const key = `rap-cross-context|${o.pcpu}|${o.consumer}|${o.producer}|none`;
    const seen = this.found.get(key);
    if (seen) {
      seen.occurrences++;
      return;
    }
    const between = (this.unpromised.get(viewOf(o.consumer)) ?? []).filter(
      (u) => u.t > o.pushedAt && u.t <= t,
    );
    const because =
      reason ??
      (between.length > 0
        ? `no clear was promised between the push and the RET: ${between.length} RAP-relevant action(s) ran, none promised by ${this.cfg.spec} to this context, and no stuffing sized by its CPUID ran`
        : `nothing cleared or stuffed the RAP between the push and the RET`);
    this.report('rap-cross-context', t, o, {
      promise: 'none (advisory: the configuration promises no separation here)',
      because,
      events: () => [pushEv(), ...between.slice(-3).map((b) => b.event()), use()],
      key: 'none',
    });
  }

  private report(
    property: Property,
    t: Time,
    o: RapUseObs,
    v: { promise: string; because: string; events: () => string[]; key: string },
  ): void {
    const key = `${property}|${o.pcpu}|${o.consumer}|${o.producer}|${v.key}`;
    const seen = this.found.get(key);
    if (seen) {
      seen.occurrences++;
      return;
    }
    this.found.set(key, {
      property,
      atNs: toNs(t),
      pcpu: o.pcpu,
      consumer: this.ref(decodeContext(o.consumer)),
      producer: { ...this.ref(decodeContext(o.producer)), atNs: toNs(o.pushedAt) },
      promise: v.promise,
      because: v.because,
      events: v.events(),
      occurrences: 1,
    });
  }

  private firstBeliefAfter(view: number, pushedAt: Time, t: Time): Belief | undefined {
    const list = this.beliefs.get(view);
    if (!list || list.length === 0 || list[list.length - 1]!.t <= pushedAt) return undefined;
    let lo = 0;
    let hi = list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.t > pushedAt) hi = mid;
      else lo = mid + 1;
    }
    const b = list[lo]!;
    return b.t <= t ? b : undefined;
  }

  private ref(c: RapContext): ContextRef {
    return {
      world: c.world,
      vm: c.world === 'host' ? null : this.cfg.vmName(c.vm),
      vcpu: c.world === 'host' ? null : c.view,
      level: c.level,
      process: c.process === KERNEL_PROCESS ? null : c.process,
    };
  }

  private ctxName(ctx: number): string {
    const c = decodeContext(ctx);
    const proc = c.process === KERNEL_PROCESS ? 'kernel' : `process ${c.process}`;
    return c.world === 'host'
      ? `host ${proc}`
      : `${this.cfg.vmName(c.vm)} vCPU ${c.view} L${c.level} ${proc}`;
  }
}

function viewOf(ctx: number): number {
  return Math.floor(ctx / 4096);
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
