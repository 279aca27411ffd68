import type { TraceRecord } from '../actors/partition.js';
import type { Observation } from '../actors/types.js';
import type { RecordedTrace } from '../workers/runSimulation.js';
import { delta, RAP_ENTRY_WIDTH, type RapDelta, type RapProbe } from '../workers/traceProbe.js';

/** One event the exports keep, with its observations and what it did to its core's RAP. */
export interface KeptEvent {
  e: TraceRecord;
  obs: Observation[];
  /** Change of the RAP since the previous kept event of the same core (deltas as in the probe). */
  rap?: RapProbe;
  /** The core actor whose RAP `rap` is (the event's actor, or the core a vCPU runs on). */
  rapActor?: number;
  /** RAP occupancy after the event, when `rap` is set. */
  occupancy?: { host: number; guest: number | null };
}

/** How an export thins a recorded trace. */
export interface Sampling {
  /**
   * Keep every `every`-th continuation (an actor's event to itself, such as a workload STEP) of
   * each actor; messages, state changes, events with observations and window openings are
   * always kept. 1 keeps everything.
   */
  every: number;
}

const keyOf = (x: { t: number; p: number; src: number; seq: number }): string =>
  `${x.t},${x.p},${x.src},${x.seq}`;

/**
 * Walks a recorded trace in key order and returns the events to export. RAP deltas are re-based
 * on the previous *kept* event of each actor, so dropping continuations never loses the RAP:
 * the next kept event carries the whole change.
 */
export function keptEvents(trace: RecordedTrace, sampling: Sampling = { every: 1 }): KeptEvent[] {
  const every = Math.max(1, Math.floor(sampling.every));
  const byEvent = new Map<string, Observation[]>();
  for (const o of trace.observations) {
    const k = keyOf(o);
    const list = byEvent.get(k);
    if (list) list.push(o);
    else byEvent.set(k, [o]);
  }
  const state = new Map<number, string>();
  const selfCount = new Map<number, number>();
  const rapNow = new Map<number, { host: number[]; guest: number[] }>();
  const rapKept = new Map<number, { host: number[]; guest: number[] }>();
  const dirty = new Set<number>();
  /** The core each actor's probes reported (a vCPU's RAP is its core's). */
  const coreOf = new Map<number, number>();
  const out: KeptEvent[] = [];
  for (const e of trace.entries) {
    const a = e.dst;
    const probe = e.probe as RapProbe | undefined;
    if (probe) coreOf.set(a, probe.core ?? a);
    const ra = coreOf.get(a) ?? a;
    if (probe) {
      const cur = rapNow.get(ra) ?? { host: [], guest: [] };
      if (probe.host) cur.host = apply(cur.host, probe.host);
      if (probe.guest) cur.guest = apply(cur.guest, probe.guest);
      rapNow.set(ra, cur);
      dirty.add(ra);
    }
    const obs = byEvent.get(keyOf(e)) ?? [];
    const changed = state.get(a) !== e.state;
    state.set(a, e.state);
    let keep = e.seq === -1 || e.src !== e.dst || changed || obs.length > 0;
    if (!keep) {
      const n = (selfCount.get(a) ?? 0) + 1;
      selfCount.set(a, n);
      keep = n % every === 0;
    }
    if (!keep) continue;
    const k: KeptEvent = { e, obs };
    if (dirty.has(ra)) {
      dirty.delete(ra);
      const cur = rapNow.get(ra)!;
      const prev = rapKept.get(ra) ?? { host: [], guest: [] };
      const rap: RapProbe = {};
      const h = delta(prev.host, cur.host);
      const g = delta(prev.guest, cur.guest);
      if (h) rap.host = h;
      if (g) rap.guest = g;
      rapKept.set(ra, { host: cur.host, guest: cur.guest });
      if (h || g || e.seq === -1) {
        k.rap = rap;
        k.rapActor = ra;
        k.occupancy = {
          host: cur.host.length / RAP_ENTRY_WIDTH,
          guest: cur.guest.length > 0 || prev.guest.length > 0 ? cur.guest.length / RAP_ENTRY_WIDTH : null,
        };
      }
    }
    out.push(k);
  }
  return out;
}

/** Applies a delta to a flattened stack. */
export function apply(stack: readonly number[], d: RapDelta): number[] {
  return [...stack.slice(0, d.keep * RAP_ENTRY_WIDTH), ...d.add];
}
