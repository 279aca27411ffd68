import { createHash, type Hash } from 'node:crypto';
import { EventQueue } from './eventQueue.js';
import type { HostedActor, Port } from './hostedActor.js';
import { createIdFactory } from './ids.js';
import { Priority } from './priority.js';
import { Stream } from './prng.js';
import { SimulationError } from './simulationError.js';
import type { Time } from './time.js';
import type { ActorIndex, Envelope, Observation, TraceEntry } from './types.js';

/** The static facts every partition shares: the topology and its links. */
export interface PartitionTopology {
  /** All actor ids, sorted; the position is the actor index. */
  ids: readonly string[];
  /** partitionOf[actorIndex] = partition number. */
  partitionOf: readonly number[];
  /** Link latency between two actors (ps). Must be > 0 across partitions. */
  latency: (src: ActorIndex, dst: ActorIndex) => Time;
}

export interface PartitionOptions {
  index: number;
  topology: PartitionTopology;
  /** Factories for the actors of this partition, by actor index. */
  actors: ReadonlyMap<ActorIndex, HostedActor>;
  rootSeed: number;
  /** Hard cap on events delivered by this partition (the global cap is checked at barriers). */
  maxEvents: number;
  /** Keep every delivered event (for trace export); the digest is always computed. */
  recordTrace?: boolean;
  /** With `recordTrace`: which events to keep (default: all). */
  traceWindow?: TraceWindow;
  /**
   * With `recordTrace`: called after each kept delivery (and for each actor when the window
   * opens); its result is kept as the entry's `probe` (e.g. the core's RAP contents). Reads only.
   */
  probe?: (index: ActorIndex, actor: HostedActor) => unknown;
}

/** The events a recorded trace keeps: `from` ≤ t < `to`, at most `limit` of them per partition. */
export interface TraceWindow {
  from: Time;
  to: Time;
  limit: number;
}

/**
 * A delivered event in a recorded trace, with the time its message was sent. The entries an
 * actor gets when the trace window opens (`type` 'trace.start', `seq` -1) carry its state then.
 */
export interface TraceRecord extends TraceEntry {
  sent: Time;
  probe?: unknown;
}

/** What a partition hands back at a barrier. */
export interface WindowResult {
  /** Messages for actors of other partitions, in production order. */
  outbound: Envelope[];
  /** Time of this partition's earliest pending event (Infinity when idle). */
  next: Time;
  observations: Observation[];
  /** Events delivered in this window. */
  events: number;
}

export interface ActorSummary {
  index: ActorIndex;
  id: string;
  events: number;
  /** sha256 over this actor's delivered events in key order. */
  digest: string;
  stats: unknown;
  state: string;
}

/**
 * One partition of the simulation: the kernel's event loop over the actors it owns. A run with
 * `workers: N` has N partitions, each on its own thread; a run with one partition is the same
 * code. Events are delivered strictly in key order `(t, p, src, seq)`; a message to an actor in
 * another partition is held in the outbox until the barrier. See docs/architecture.md.
 */
export class Partition {
  private readonly queue = new EventQueue();
  private readonly ports = new Map<ActorIndex, Port>();
  private readonly seqs = new Map<ActorIndex, number>();
  private readonly digests = new Map<ActorIndex, Hash>();
  /** Digest input waiting to be hashed: one hash update per window is far cheaper than one per event. */
  private readonly pending = new Map<ActorIndex, string[]>();
  private readonly counts = new Map<ActorIndex, number>();
  private readonly indexById = new Map<string, ActorIndex>();
  private outbox: Envelope[] = [];
  private observations: Observation[] = [];
  private current: Envelope | undefined;
  private observeSub = 0;
  private now: Time = 0;
  private delivered = 0;
  readonly trace: TraceRecord[] = [];
  /** The recorded trace hit `traceWindow.limit` (later events were not kept). */
  traceTruncated = false;
  private traceOpen = false;
  private traceEvents = 0;

  constructor(private readonly opts: PartitionOptions) {
    opts.topology.ids.forEach((id, i) => {
      this.indexById.set(id, i);
    });
    for (const [index, actor] of opts.actors) {
      if (opts.topology.partitionOf[index] !== opts.index) {
        throw new Error(`actor ${actor.id} is not in partition ${opts.index}`);
      }
      this.seqs.set(index, 0);
      this.counts.set(index, 0);
      this.digests.set(index, createHash('sha256'));
      this.pending.set(index, []);
      this.ports.set(index, this.makePort(index, actor.id));
    }
  }

  /** Starts every actor at time 0 (in index order, so their first events are deterministic). */
  start(): Time {
    for (const index of [...this.opts.actors.keys()].sort((a, b) => a - b)) {
      const actor = this.opts.actors.get(index)!;
      this.current = {
        t: 0,
        p: Priority.INTERRUPT - 1,
        src: index,
        seq: -1,
        dst: index,
        type: 'start',
        data: null,
      };
      this.observeSub = 0;
      try {
        actor.start(this.ports.get(index)!);
      } catch (err) {
        throw this.wrap(err, actor.id, 'start', 0);
      }
    }
    this.current = undefined;
    if (this.opts.recordTrace && (this.opts.traceWindow?.from ?? 0) <= 0) this.openTrace(0);
    return this.queue.peekTime();
  }

  /** Inserts messages from other partitions (any order: the queue orders them by key). */
  receive(inbound: readonly Envelope[]): void {
    for (const e of inbound) this.queue.push(e);
  }

  /** Delivers every event with time < `end`, then reports at the barrier. */
  runWindow(end: Time, inbound: readonly Envelope[] = []): WindowResult {
    this.receive(inbound);
    const startCount = this.delivered;
    const q = this.queue;
    while (q.size > 0 && q.peekTime() < end) {
      const env = q.pop()!;
      this.deliver(env);
    }
    const result: WindowResult = {
      outbound: this.outbox,
      next: q.peekTime(),
      observations: this.observations,
      events: this.delivered - startCount,
    };
    this.outbox = [];
    this.observations = [];
    this.flushDigests();
    return result;
  }

  /** Per-actor digests, counts, statistics and final states, by actor index. */
  summarize(): ActorSummary[] {
    this.flushDigests();
    return [...this.opts.actors.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([index, actor]) => ({
        index,
        id: actor.id,
        events: this.counts.get(index) ?? 0,
        digest: this.digests.get(index)!.copy().digest('hex'),
        stats: actor.stats(),
        state: actor.stateLabel(),
      }));
  }

  /** The actor that has received the most events so far (names a runaway actor). */
  busiestActor(): { id: string; events: number } {
    let best = { id: '(none)', events: -1 };
    for (const [index, n] of this.counts) {
      if (n > best.events) best = { id: this.opts.topology.ids[index]!, events: n };
    }
    return best;
  }

  private deliver(env: Envelope): void {
    const actor = this.opts.actors.get(env.dst);
    if (!actor) throw new SimulationError(`#${env.dst}`, env.type, env.t, 'no such actor in this partition');
    this.now = env.t;
    this.current = env;
    this.observeSub = 0;
    this.delivered++;
    const n = (this.counts.get(env.dst) ?? 0) + 1;
    this.counts.set(env.dst, n);
    if (this.delivered > this.opts.maxEvents) {
      const busy = this.busiestActor();
      throw new SimulationError(
        busy.id,
        env.type,
        env.t,
        `event cap of ${this.opts.maxEvents} reached; ${busy.id} received ${busy.events} events and is the likeliest runaway (raise maxEvents or shorten until)`,
      );
    }
    if (this.opts.recordTrace && !this.traceOpen && env.t >= (this.opts.traceWindow?.from ?? 0)) {
      this.openTrace(this.opts.traceWindow?.from ?? 0);
    }
    try {
      actor.deliver(env);
    } catch (err) {
      throw this.wrap(err, actor.id, env.type, env.t);
    }
    const state = actor.stateLabel();
    this.pending
      .get(env.dst)!
      .push(`${env.t},${env.p},${env.src},${env.seq},${env.type},${JSON.stringify(env.data)}>${state}\n`);
    if (this.opts.recordTrace) this.record(env as Envelope & { sent?: Time }, state, actor);
  }

  /** The recorded trace in key order (a window no event reached opens now, with the states then). */
  recordedTrace(): { entries: TraceRecord[]; truncated: boolean } {
    if (this.opts.recordTrace && !this.traceOpen) this.openTrace(this.opts.traceWindow?.from ?? 0);
    return { entries: this.trace, truncated: this.traceTruncated };
  }

  /** Keeps a delivered event in the recorded trace, if it falls in the trace window. */
  private record(env: Envelope & { sent?: Time }, state: string, actor: HostedActor): void {
    const w = this.opts.traceWindow;
    if (w && (env.t < w.from || env.t >= w.to)) return;
    if (w && this.traceEvents >= w.limit) {
      this.traceTruncated = true;
      return;
    }
    this.traceEvents++;
    const probe = this.opts.probe?.(env.dst, actor);
    this.trace.push({ ...env, sent: env.sent ?? env.t, state, probe });
  }

  /** The trace window opens at `t`: every actor's state (and probe) then, before any event at `t`. */
  private openTrace(t: Time): void {
    this.traceOpen = true;
    for (const index of [...this.opts.actors.keys()].sort((a, b) => a - b)) {
      const actor = this.opts.actors.get(index)!;
      const state = actor.stateLabel();
      const probe = this.opts.probe?.(index, actor);
      this.trace.push({
        t,
        p: 0,
        src: index,
        seq: -1,
        dst: index,
        type: 'trace.start',
        data: null,
        sent: t,
        state,
        probe,
      });
    }
  }

  private flushDigests(): void {
    for (const [index, lines] of this.pending) {
      if (lines.length === 0) continue;
      this.digests.get(index)!.update(lines.join(''));
      lines.length = 0;
    }
  }

  private wrap(err: unknown, actor: string, event: string, t: Time): SimulationError {
    if (err instanceof SimulationError) return err;
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return new SimulationError(actor, event, t, detail);
  }

  private makePort(self: ActorIndex, id: string): Port {
    const rng = Stream.child(this.opts.rootSeed, id);
    const newId = createIdFactory(Stream.child(this.opts.rootSeed, `${id}#ids`));
    const { topology } = this.opts;
    const post = (dst: ActorIndex, type: string, data: unknown, arrival: Time, p: number): void => {
      const cur = this.current;
      if (cur && (arrival < cur.t || (arrival === cur.t && p < cur.p))) {
        throw new SimulationError(
          id,
          type,
          cur.t,
          `message ${type} to #${dst} (priority ${p}, at ${arrival} ps) would arrive before the event being handled (priority ${cur.p})`,
        );
      }
      const seq = this.seqs.get(self)!;
      this.seqs.set(self, seq + 1);
      const env: Envelope = { t: arrival, p, src: self, seq, dst, type, data };
      // A recorded trace shows when each message left (plain data: it crosses threads with it).
      if (this.opts.recordTrace) (env as Envelope & { sent?: Time }).sent = this.now;
      if (topology.partitionOf[dst] === this.opts.index) this.queue.push(env);
      else this.outbox.push(env);
    };
    return {
      self,
      id,
      rng,
      now: () => this.now,
      send: (dst, type, data, delay = 0, priority = Priority.MESSAGE) => {
        const lat = dst === self ? 0 : topology.latency(self, dst);
        if (topology.partitionOf[dst] !== this.opts.index && lat <= 0) {
          throw new SimulationError(
            id,
            type,
            this.now,
            `zero-latency link to ${topology.ids[dst]} crosses partitions`,
          );
        }
        post(dst, type, data, this.now + delay + lat, priority);
      },
      schedule: (delay, type, data, priority = Priority.TIMER) => {
        post(self, type, data, this.now + delay, priority);
      },
      observe: (kind, data) => {
        const cur = this.current!;
        const obs: Observation = {
          t: cur.t,
          p: cur.p,
          src: cur.src,
          seq: cur.seq,
          actor: self,
          sub: this.observeSub++,
          kind,
          data,
        };
        this.observations.push(obs);
        this.pending.get(self)!.push(`obs ${kind} ${JSON.stringify(data)}\n`);
      },
      newId,
      indexOf: (other) => {
        const i = this.indexById.get(other);
        if (i === undefined) throw new SimulationError(id, '(lookup)', this.now, `no actor with id ${other}`);
        return i;
      },
      latencyTo: (dst) => topology.latency(self, dst),
    };
  }
}
