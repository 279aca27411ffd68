import type { Observation } from '../actors/types.js';
import type { Report } from '../report/report.js';
import { pcpuId } from '../workers/compose.js';
import type { RecordedTrace } from '../workers/runSimulation.js';
import { type ActorInfo, groupsOf } from './actors.js';
import { type KeptEvent, keptEvents, type Sampling } from './recorded.js';

/** One event of the Chrome Trace Event format (the JSON Object Format's `traceEvents`). */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'C' | 'M' | 's' | 'f';
  pid: number;
  tid?: number;
  /** Microseconds. */
  ts?: number;
  dur?: number;
  cat?: string;
  s?: 'g' | 'p' | 't';
  id?: number;
  bp?: 'e';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, unknown>;
}

/** Picoseconds (the kernel's unit) to the format's microseconds. */
export const psToUs = (ps: number): number => ps / 1_000_000;

/** A delivery slice lasts at most this long (1 ns), so that flow arrows land on something. */
const DELIVERY_PS = 1_000;

/** Observation kinds drawn as instant events (the others are too many or are the violations). */
const INSTANT_KINDS: Record<string, (d: Record<string, unknown>) => string | undefined> = {
  'rap.action': (d) => (d.cleared ? `RAP cleared: ${String(d.action)}` : undefined),
  'rap.stuff': (d) => `RAP stuffing: ${String(d.calls)} CALLs`,
  'tlb.shootdown.start': (d) => `shootdown ${String(d.id)} starts`,
  'tlb.shootdown.complete': (d) => `shootdown ${String(d.id)} complete`,
  'svm.vmrun': () => 'VMRUN',
};

/**
 * The run as a Chrome Trace Event file (Perfetto and chrome://tracing open it): one process per
 * host/VM, one thread per actor; complete (`X`) slices for the time each actor spent in each
 * state; a short slice per delivered message with a flow arrow from the sender at its send time;
 * instant events for violations (global) and for RAP clears, stuffing and shootdowns (on the
 * actor); a counter of RAP occupancy per core. Times are microseconds.
 */
export function chromeTrace(
  report: Report,
  actors: readonly ActorInfo[],
  trace: RecordedTrace,
  sampling: Sampling = { every: 1 },
  kept: readonly KeptEvent[] = keptEvents(trace, sampling),
): ChromeTrace {
  const groups = groupsOf(actors);
  const pidOf = new Map(groups.map((g, i) => [g.id, i + 1]));
  const pid = (a: number): number => pidOf.get(actors[a]?.group ?? 'host') ?? 1;
  const tid = (a: number): number => a + 1;
  const ev: TraceEvent[] = [];
  groups.forEach((g, i) => {
    ev.push({ name: 'process_name', ph: 'M', pid: i + 1, args: { name: g.label } });
    ev.push({ name: 'process_sort_index', ph: 'M', pid: i + 1, args: { sort_index: i } });
  });
  for (const a of actors) {
    ev.push({ name: 'thread_name', ph: 'M', pid: pid(a.index), tid: tid(a.index), args: { name: a.label } });
    ev.push({
      name: 'thread_sort_index',
      ph: 'M',
      pid: pid(a.index),
      tid: tid(a.index),
      args: { sort_index: a.index },
    });
  }
  const last = kept.length > 0 ? kept[kept.length - 1]!.e.t : trace.from;
  const end = trace.truncated ? last : Math.max(last, Math.min(trace.to, report.simulatedNs * 1000));
  // Per actor: the times at which its state changes, to bound delivery slices inside a state.
  const open = new Map<number, { state: string; since: number }>();
  const nextTimes = new Map<number, number[]>();
  for (const k of kept) {
    const list = nextTimes.get(k.e.dst) ?? [];
    list.push(k.e.t);
    nextTimes.set(k.e.dst, list);
  }
  const cursor = new Map<number, number>();
  const closeState = (a: number, at: number): void => {
    const o = open.get(a);
    if (o && at > o.since) {
      ev.push({
        name: o.state,
        cat: 'state',
        ph: 'X',
        pid: pid(a),
        tid: tid(a),
        ts: psToUs(o.since),
        dur: psToUs(at - o.since),
      });
    }
  };
  let flow = 0;
  for (const k of kept) {
    const e = k.e;
    const a = e.dst;
    const o = open.get(a);
    if (!o || o.state !== e.state) {
      closeState(a, e.t);
      open.set(a, { state: e.state, since: e.t });
    }
    const i = (cursor.get(a) ?? -1) + 1;
    cursor.set(a, i);
    if (e.seq !== -1 && e.src !== e.dst) {
      // Delivery slice: at most 1 ns, and never past this actor's next kept event.
      const following = nextTimes.get(a)?.[i + 1] ?? end;
      const dur = Math.max(0, Math.min(DELIVERY_PS, following - e.t));
      ev.push({
        name: e.type,
        cat: 'message',
        ph: 'X',
        pid: pid(a),
        tid: tid(a),
        ts: psToUs(e.t),
        dur: psToUs(dur),
        args: {
          from: actors[e.src]?.id ?? `#${e.src}`,
          sentUs: psToUs(e.sent),
          latencyNs: (e.t - e.sent) / 1000,
          data: e.data,
        },
      });
      const id = ++flow;
      ev.push({
        name: e.type,
        cat: 'message',
        ph: 's',
        id,
        pid: pid(e.src),
        tid: tid(e.src),
        ts: psToUs(e.sent),
      });
      ev.push({
        name: e.type,
        cat: 'message',
        ph: 'f',
        bp: 'e',
        id,
        pid: pid(a),
        tid: tid(a),
        ts: psToUs(e.t),
      });
    }
    for (const ob of k.obs) pushInstant(ev, ob, pid, tid);
    if (k.occupancy) {
      const args: Record<string, number> = { host: k.occupancy.host };
      if (k.occupancy.guest !== null) args.guest = k.occupancy.guest;
      const core = k.rapActor ?? a;
      ev.push({
        name: `RAP occupancy ${actors[core]?.label ?? core}`,
        cat: 'rap',
        ph: 'C',
        pid: pid(core),
        ts: psToUs(e.t),
        args,
      });
    }
  }
  for (const a of open.keys()) closeState(a, end);
  for (const v of report.violations) {
    const t = v.atNs * 1000;
    if (t < trace.from || t > end) continue;
    const a = actors.findIndex((x) => x.id === pcpuId(v.pcpu));
    ev.push({
      name: v.property,
      cat: 'violation',
      ph: 'i',
      s: 'g',
      pid: a >= 0 ? pid(a) : 1,
      ...(a >= 0 ? { tid: tid(a) } : {}),
      ts: psToUs(t),
      args: {
        pcpu: v.pcpu,
        promise: v.promise,
        because: v.because,
        occurrences: v.occurrences,
        consumer: v.consumer,
        producer: v.producer,
        events: v.events,
      },
    });
  }
  return {
    traceEvents: ev,
    displayTimeUnit: 'ns',
    otherData: {
      rapsim: report.rapsim,
      scenario: report.scenario,
      seed: report.seed,
      traceDigest: report.traceDigest,
      windowUs: [psToUs(trace.from), psToUs(end)],
      truncated: trace.truncated,
      sampleEvery: sampling.every,
      replay: report.replay,
    },
  };
}

function pushInstant(
  ev: TraceEvent[],
  o: Observation,
  pid: (a: number) => number,
  tid: (a: number) => number,
): void {
  const namer = INSTANT_KINDS[o.kind];
  const name = namer?.(o.data as Record<string, unknown>);
  if (!name) return;
  ev.push({
    name,
    cat: o.kind,
    ph: 'i',
    s: 't',
    pid: pid(o.actor),
    tid: tid(o.actor),
    ts: psToUs(o.t),
    args: o.data as Record<string, unknown>,
  });
}

/**
 * Writes the trace as JSON text without building one giant string (a large run's trace is tens
 * of MB): one event per line, in chunks.
 */
export function* chromeTraceChunks(t: ChromeTrace): Generator<string> {
  yield `{"displayTimeUnit":"ns","otherData":${JSON.stringify(t.otherData)},"traceEvents":[\n`;
  const n = t.traceEvents.length;
  const CHUNK = 2000;
  for (let i = 0; i < n; i += CHUNK) {
    const part = t.traceEvents.slice(i, i + CHUNK).map((e) => JSON.stringify(e));
    yield `${part.join(',\n')}${i + CHUNK < n ? ',\n' : '\n'}`;
  }
  yield ']}\n';
}
