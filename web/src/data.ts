import type { TimelineFile } from '../../src/viz/timelineFormat.js';

/** Width of one flattened RAP entry: [ctx, pushedAtPs, addr, stuff]. */
export const W = 4;

/** Full snapshots are kept every this many RAP changes of an actor; others are replayed from them. */
const KEYFRAME_EVERY = 48;

export interface RapEntry {
  ctx: number;
  pushedAt: number;
  addr: number;
  stuff: boolean;
}

export interface RapState {
  host: RapEntry[];
  guest: RapEntry[] | null;
  /** Event number of the change this snapshot comes from (-1: no entry recorded yet). */
  ev: number;
}

interface ActorRap {
  /** Positions in `tl.rap` of this actor's changes, in event order. */
  recs: number[];
  /** Event numbers of those changes. */
  evs: Int32Array;
  keyframes: Map<number, { host: number[]; guest: number[] }>;
}

/**
 * The loaded run with the indexes the page needs to answer "what was true at event k" fast:
 * per actor, its event numbers (for its state at k) and its RAP changes with keyframes.
 */
export class Run {
  readonly n: number;
  /** Delivery and send times (ps), decoded from the file's differences. */
  readonly t: Float64Array;
  readonly sent: Float64Array;
  /** Per actor: the event numbers delivered to it, ascending. */
  readonly actorEvents: Int32Array[];
  private readonly rapIndex: ActorRap[];
  /** Observations by event number: [start, end) into tl.obs. */
  private readonly obsStart: Int32Array;
  readonly messages: Int32Array;

  constructor(readonly tl: TimelineFile) {
    const ev = tl.events;
    this.n = ev.dt.length;
    this.t = new Float64Array(this.n);
    this.sent = new Float64Array(this.n);
    let acc = 0;
    for (let i = 0; i < this.n; i++) {
      acc += ev.dt[i]!;
      this.t[i] = acc;
      this.sent[i] = acc - ev.lag[i]!;
    }
    const nActors = tl.actors.length;
    const lists: number[][] = Array.from({ length: nActors }, () => []);
    const msgs: number[] = [];
    for (let i = 0; i < this.n; i++) {
      lists[ev.dst[i]!]?.push(i);
      if (ev.src[i] !== ev.dst[i]) msgs.push(i);
    }
    this.actorEvents = lists.map((l) => Int32Array.from(l));
    this.messages = Int32Array.from(msgs);
    this.obsStart = new Int32Array(this.n + 1);
    const counts = new Int32Array(this.n + 1);
    for (const e of tl.obs.ev) counts[e + 1]!++;
    for (let i = 0; i < this.n; i++) this.obsStart[i + 1] = this.obsStart[i]! + counts[i + 1]!;
    this.rapIndex = Array.from({ length: nActors }, () => ({
      recs: [],
      evs: new Int32Array(0),
      keyframes: new Map(),
    }));
    const cur: { host: number[]; guest: number[] }[] = Array.from({ length: nActors }, () => ({
      host: [],
      guest: [],
    }));
    tl.rap.ev.forEach((_e, r) => {
      const a = tl.rap.actor[r]!;
      const idx = this.rapIndex[a]!;
      const c = cur[a]!;
      const h = this.decode(r, 'host');
      const g = this.decode(r, 'guest');
      if (h) c.host = [...c.host.slice(0, h.keep * W), ...h.add];
      if (g) c.guest = [...c.guest.slice(0, g.keep * W), ...g.add];
      if (idx.recs.length % KEYFRAME_EVERY === 0)
        idx.keyframes.set(idx.recs.length, { host: c.host, guest: c.guest });
      idx.recs.push(r);
    });
    for (const idx of this.rapIndex) idx.evs = Int32Array.from(idx.recs.map((r) => tl.rap.ev[r]!));
  }

  /** RAP change `r` of one stack with contexts and push times made absolute (null: unchanged). */
  private decode(r: number, stack: 'host' | 'guest'): { keep: number; add: number[] } | null {
    const d = this.tl.rap[stack][r];
    if (!d) return null;
    const t = this.t[this.tl.rap.ev[r]!]!;
    const add = d.add.slice();
    for (let j = 0; j < add.length; j += W) {
      add[j] = this.tl.contextList[add[j]!]!;
      add[j + 1] = t - add[j + 1]!;
    }
    return { keep: d.keep, add };
  }

  time(k: number): number {
    return this.t[k] ?? 0;
  }

  /** The actor's state after event k (its state as of the last event it got at or before k). */
  stateAt(actor: number, k: number): string {
    const list = this.actorEvents[actor];
    if (!list) return '';
    const i = lastAtOrBefore(list, k);
    return i < 0 ? '' : (this.tl.states[this.tl.events.state[list[i]!]!] ?? '');
  }

  /** The last event of the actor at or before k (-1 if none). */
  lastEventOf(actor: number, k: number): number {
    const list = this.actorEvents[actor];
    if (!list) return -1;
    const i = lastAtOrBefore(list, k);
    return i < 0 ? -1 : list[i]!;
  }

  /** Next/previous event of the actor strictly after/before k (-1 if none). */
  neighbourEventOf(actor: number, k: number, dir: 1 | -1): number {
    const list = this.actorEvents[actor];
    if (!list) return -1;
    const i = lastAtOrBefore(list, dir === 1 ? k : k - 1);
    const j = dir === 1 ? i + 1 : i;
    return j >= 0 && j < list.length ? list[j]! : -1;
  }

  /** The actor's RAP after event k (`before` = after the actor's last change strictly before k). */
  rapAt(actor: number, k: number, before = false): RapState {
    const idx = this.rapIndex[actor];
    if (!idx || idx.recs.length === 0) return { host: [], guest: null, ev: -1 };
    const i = lastAtOrBefore(idx.evs, before ? k - 1 : k);
    if (i < 0) return { host: [], guest: null, ev: -1 };
    const base = Math.floor(i / KEYFRAME_EVERY) * KEYFRAME_EVERY;
    const kf = idx.keyframes.get(base)!;
    let host = kf.host;
    let guest = kf.guest;
    for (let j = base + 1; j <= i; j++) {
      const r = idx.recs[j]!;
      const h = this.decode(r, 'host');
      const g = this.decode(r, 'guest');
      if (h) host = [...host.slice(0, h.keep * W), ...h.add];
      if (g) guest = [...guest.slice(0, g.keep * W), ...g.add];
    }
    const hasGuest = idx.recs.some((r) => this.tl.rap.guest[r] !== null);
    return { host: entries(host), guest: hasGuest ? entries(guest) : null, ev: idx.evs[i]! };
  }

  /** Observations made while handling event k. */
  obsOf(k: number): { kind: string; data: Record<string, unknown> }[] {
    const out = [];
    for (let i = this.obsStart[k]!; i < this.obsStart[k + 1]!; i++) {
      out.push({
        kind: this.tl.obsKinds[this.tl.obs.kind[i]!] ?? '',
        data: this.tl.obsData[this.tl.obs.data[i]!] as Record<string, unknown>,
      });
    }
    return out;
  }

  /** The first event at or after time t (ps). */
  eventAtTime(t: number): number {
    const ts = this.t;
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ts[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return Math.min(lo, this.n - 1);
  }

  /** Next/previous message (event between two actors) strictly after/before k. */
  neighbourMessage(k: number, dir: 1 | -1): number {
    const i = lastAtOrBefore(this.messages, dir === 1 ? k : k - 1);
    const j = dir === 1 ? i + 1 : i;
    return j >= 0 && j < this.messages.length ? this.messages[j]! : -1;
  }
}

function entries(flat: readonly number[]): RapEntry[] {
  const out: RapEntry[] = [];
  for (let i = 0; i < flat.length; i += W) {
    out.push({ ctx: flat[i]!, pushedAt: flat[i + 1]!, addr: flat[i + 2]!, stuff: flat[i + 3] === 1 });
  }
  return out;
}

/** Index of the last element ≤ x in an ascending array, or -1. */
export function lastAtOrBefore(a: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Picoseconds as the page shows them: `1.958667 µs`, `2 ms`. */
export function fmtTime(ps: number): string {
  if (ps >= 1e9) return `${trim(ps / 1e9)} ms`;
  if (ps >= 1e6) return `${trim(ps / 1e6)} µs`;
  if (ps >= 1e3) return `${trim(ps / 1e3)} ns`;
  return `${ps} ps`;
}

function trim(x: number): string {
  return Number(x.toFixed(6)).toString();
}
