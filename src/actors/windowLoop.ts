import type { WindowResult } from './partition.js';
import type { Time } from './time.js';
import { compareObservations, type Envelope, type Observation } from './types.js';

/**
 * A partition as the window loop sees it: local (same thread) or on a worker thread. A window is
 * started on every partition first and collected afterwards, so threads run it concurrently.
 */
export interface PartitionHandle {
  /** Starts a window: deliver `inbound`, run every event with time < `end`. */
  begin(end: Time, inbound: Envelope[]): void;
  /** The window's result, once the partition has reached the barrier. */
  collect(): WindowResult | Promise<WindowResult>;
}

export interface WindowLoopOptions {
  partitions: PartitionHandle[];
  /** Each partition's earliest event after start. */
  initialNext: Time[];
  partitionOf: readonly number[];
  /** Smallest latency of any cross-partition link; Infinity with one partition. */
  lookahead: Time;
  /** Last simulated instant that runs (events at `until` run; later ones do not). */
  until: Time;
  /** Upper bound on a window, so progress and observations flow on long single-partition runs. */
  maxWindow: Time;
  maxEvents: number;
  /** Receives each window's observations in global order. */
  onWindow?: (observations: Observation[], windowEnd: Time, events: number) => void;
}

export interface WindowLoopResult {
  events: number;
  windows: number;
  /** `until`, or, when the event cap stopped the run, the end of the last window it ran. */
  simulatedUntil: Time;
  /** True when the run stopped because the event cap was reached. */
  capped: boolean;
}

/**
 * Conservative synchronous windows (docs/architecture.md). Every partition runs all its events
 * with time < end; cross-partition messages produced in the window arrive no earlier than
 * end (their latency is ≥ the lookahead), so they are exchanged at the barrier, batched, and
 * inserted by key. The next window ends at (global earliest event + lookahead).
 */
export async function runWindows(o: WindowLoopOptions): Promise<WindowLoopResult> {
  if (o.partitions.length > 1 && !(o.lookahead > 0)) {
    throw new Error(`lookahead must be > 0 with several partitions, found ${o.lookahead}`);
  }
  let inbound = emptyInbound(o.partitions.length);
  let earliest = Math.min(...o.initialNext);
  let events = 0;
  let windows = 0;
  let capped = false;
  let lastEnd = 0;
  const stop = o.until + 1;
  while (earliest < stop) {
    const end = Math.min(earliest + Math.min(o.lookahead, o.maxWindow), stop);
    lastEnd = end;
    for (let i = 0; i < o.partitions.length; i++) o.partitions[i]!.begin(end, inbound[i]!);
    const results: WindowResult[] = [];
    for (const p of o.partitions) results.push(await p.collect());
    windows++;
    inbound = emptyInbound(o.partitions.length);
    earliest = Number.POSITIVE_INFINITY;
    const observations: Observation[] = [];
    let windowEvents = 0;
    for (const r of results) {
      windowEvents += r.events;
      earliest = Math.min(earliest, r.next);
      for (const e of r.outbound) {
        if (e.t < end)
          throw new Error(
            `message ${e.type} to #${e.dst} arrives at ${e.t}, inside the window ending ${end}`,
          );
        inbound[o.partitionOf[e.dst]!]!.push(e);
        earliest = Math.min(earliest, e.t);
      }
      for (const ob of r.observations) observations.push(ob);
    }
    observations.sort(compareObservations);
    events += windowEvents;
    o.onWindow?.(observations, end, events);
    if (events > o.maxEvents) {
      capped = true;
      break;
    }
  }
  return {
    events,
    windows,
    simulatedUntil: capped ? Math.min(lastEnd, o.until) : o.until,
    capped,
  };
}

/**
 * One empty inbox per partition, always built the same way (pushed into a literal), so the
 * window loop's optimized code sees one array shape; `partitions.map(() => [])` gave arrays of
 * another elements kind and deoptimized `runWindows` partway through a sweep.
 */
function emptyInbound(partitions: number): Envelope[][] {
  const out: Envelope[][] = [];
  for (let i = 0; i < partitions; i++) out.push([]);
  return out;
}
