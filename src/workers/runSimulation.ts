import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import type { ActorSummary, TraceRecord, WindowResult } from '../actors/partition.js';
import { SimulationError } from '../actors/simulationError.js';
import type { Time } from '../actors/time.js';
import { compareKeys, type Envelope, type Observation } from '../actors/types.js';
import { type PartitionHandle, runWindows } from '../actors/windowLoop.js';
import { CheckerSuite } from '../check/checkerSuite.js';
import type { Property, Violation } from '../check/violation.js';
import type { Scenario } from '../scenario/schema.js';
import { CMD, createBarrier, DONE, slot, waitAtLeast } from './barrier.js';
import { buildTopology, checkerConfig, type Topology } from './compose.js';
import { type FromPartition, type PartitionSetup, PartitionTask, type ToPartition } from './partitionTask.js';
import type { PartitionWorkerInput } from './partitionWorker.js';

export interface RunOptions {
  workers: number;
  until?: Time;
  /** Run partitions on this thread instead of piscina workers (tests of the kernel only). */
  inProcess?: boolean;
  onProgress?: (simulated: Time, until: Time, events: number) => void;
  /**
   * Record a full trace (opt-in, for trace export and the viewer): the events with
   * `from` ≤ t < `to` (default: all), at most `limit` of them (default 1,000,000). Recording
   * never changes the digest or the report.
   */
  trace?: { from?: Time; to?: Time; limit?: number };
}

/** A recorded trace: events and observations in global key order, within the trace window. */
export interface RecordedTrace {
  from: Time;
  to: Time;
  limit: number;
  /** The limit cut the trace short: it ends at the last kept event. */
  truncated: boolean;
  entries: TraceRecord[];
  observations: Observation[];
}

export interface RunResult {
  events: number;
  windows: number;
  simulatedPs: Time;
  wallMs: number;
  traceDigest: string;
  actors: ActorSummary[];
  violations: Violation[];
  violationCounts: Record<Property, number>;
  failing: Property[];
  topology: Pick<Topology, 'partitions' | 'lookahead' | 'timing'>;
  /** With `trace` in the options. */
  trace?: RecordedTrace;
}

/** Upper bound on one window: keeps observations flowing and progress visible on long runs. */
const MAX_WINDOW: Time = 100_000_000; // 100 µs

/**
 * Runs one simulation: builds the topology, starts one partition per worker (piscina threads,
 * min = max), drives the conservative windows, feeds the checkers in global order, and combines
 * the per-actor digests in actor order into the run's `traceDigest`. Throws
 * {@link SimulationError} for internal errors; never leaves a thread behind.
 *
 * @example
 * const r = await runSimulation(scenario, { workers: 2 });
 * r.traceDigest // 'sha256:…', the same for any worker count
 */
export async function runSimulation(s: Scenario, opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const until = opts.until ?? s.until;
  const topo = buildTopology(s, opts.workers);
  const window = opts.trace
    ? { from: opts.trace.from ?? 0, to: opts.trace.to ?? until + 1, limit: opts.trace.limit ?? 1_000_000 }
    : undefined;
  const traceObs: Observation[] = [];
  const setups: PartitionSetup[] = Array.from({ length: topo.partitions }, (_, i) => ({
    scenario: s,
    partition: i,
    workers: opts.workers,
    until,
    maxEvents: s.maxEvents,
    ...(window ? { trace: window } : {}),
  }));
  const links = opts.inProcess
    ? setups.map((x) => new LocalLink(x, topo))
    : await startThreads(setups, [...topo.partitionOf]);
  try {
    const ready = await Promise.all(links.map((l) => l.ready()));
    const checkers = new CheckerSuite(checkerConfig(s));
    const loop = await runWindows({
      partitions: links,
      initialNext: ready,
      partitionOf: topo.partitionOf,
      lookahead: topo.lookahead,
      until,
      maxWindow: MAX_WINDOW,
      maxEvents: s.maxEvents,
      onWindow: (obs, end, events) => {
        checkers.observe(obs);
        if (window) for (const o of obs) if (o.t >= window.from && o.t < window.to) traceObs.push(o);
        opts.onProgress?.(Math.min(end, until), until, events);
      },
    });
    const finals = await Promise.all(links.map((l) => l.finish()));
    const actors = finals.flatMap((f) => f.actors).sort((a, b) => a.index - b.index);
    if (loop.capped) {
      const busiest = finals.map((f) => f.busiest).sort((a, b) => b.events - a.events)[0]!;
      throw new SimulationError(
        busiest.id,
        '(any)',
        loop.simulatedUntil,
        `event cap of ${s.maxEvents} reached after ${loop.events} events; ${busiest.id} received ${busiest.events} and is the likeliest runaway (raise maxEvents or shorten until)`,
      );
    }
    const trace = window ? mergeTraces(window, finals, traceObs) : undefined;
    const digest = createHash('sha256');
    for (const a of actors) digest.update(`${a.id} ${a.events} ${a.digest}\n`);
    return {
      events: loop.events,
      windows: loop.windows,
      simulatedPs: until,
      wallMs: Math.round(performance.now() - started),
      traceDigest: `sha256:${digest.digest('hex')}`,
      actors,
      violations: checkers.violations(),
      violationCounts: checkers.counts(),
      failing: checkers.failing(),
      topology: { partitions: topo.partitions, lookahead: topo.lookahead, timing: topo.timing },
      ...(trace ? { trace } : {}),
    };
  } finally {
    await Promise.all(links.map((l) => l.close()));
  }
}

/**
 * Merges the partitions' recorded traces in key order; with a limit, keeps the first `limit`
 * events of the run (each partition kept its first `limit`, a superset of its share) and the
 * observations up to the last kept event, so the result does not depend on partitioning.
 */
function mergeTraces(
  window: { from: Time; to: Time; limit: number },
  finals: { trace?: { entries: TraceRecord[]; truncated: boolean } }[],
  observations: Observation[],
): RecordedTrace {
  const all = finals.flatMap((f) => f.trace?.entries ?? []).sort(compareKeys);
  const opening = all.filter((e) => e.seq === -1);
  const events = all.filter((e) => e.seq !== -1);
  let truncated = finals.some((f) => f.trace?.truncated);
  let obs = observations;
  if (events.length > window.limit || truncated) {
    truncated = true;
    events.length = Math.min(events.length, window.limit);
    const last = events[events.length - 1];
    obs = last ? observations.filter((o) => compareKeys(o, last) <= 0) : [];
  }
  const entries = [...opening, ...events].sort(compareKeys);
  return { ...window, truncated, entries, observations: obs };
}

interface Link extends PartitionHandle {
  ready(): Promise<Time>;
  finish(): Promise<{
    actors: ActorSummary[];
    busiest: { id: string; events: number };
    trace?: { entries: TraceRecord[]; truncated: boolean };
  }>;
  close(): Promise<void>;
}

function unwrap<K extends FromPartition['kind']>(
  msg: FromPartition,
  kind: K,
): Extract<FromPartition, { kind: K }> {
  if (msg.kind === 'error') {
    const e = msg.error;
    throw new SimulationError(e.actor, e.event, e.timePs, e.detail);
  }
  if (msg.kind !== kind) throw new Error(`partition protocol: expected ${kind}, got ${msg.kind}`);
  return msg as Extract<FromPartition, { kind: K }>;
}

/** A partition on the coordinator's own thread (it shares the coordinator's topology). */
class LocalLink implements Link {
  private readonly task: PartitionTask;
  constructor(setup: PartitionSetup, topo: Topology) {
    this.task = new PartitionTask(setup, topo);
  }
  async ready(): Promise<Time> {
    return unwrap(this.task.start(), 'ready').next;
  }
  private last: FromPartition | undefined;
  begin(end: Time, inbound: Envelope[]): void {
    this.last = this.task.handle({ kind: 'window', end, inbound });
  }
  collect(): WindowResult {
    return unwrap(this.last!, 'window').result;
  }
  async finish() {
    const f = unwrap(this.task.handle({ kind: 'finish' }), 'finished');
    return { actors: f.actors, busiest: f.busiest, trace: f.trace };
  }
  async close(): Promise<void> {}
}

/** How long the coordinator waits for a partition at a barrier before calling it hung. */
const BARRIER_TIMEOUT_MS = 5 * 60_000;

/**
 * A partition on a piscina worker thread. Commands and results travel as MessagePort messages,
 * but both sides block on the shared {@link Barrier} counters and read messages synchronously,
 * so a window costs no event-loop hop on either side.
 */
class ThreadLink implements Link {
  private asked = 0;
  private answered = 0;
  private closed = false;

  constructor(
    private readonly port: MessagePort,
    private readonly ctl: Int32Array,
    private readonly index: number,
    readonly done: Promise<void>,
  ) {}

  private post(msg: ToPartition | { kind: 'abort' }): void {
    this.port.postMessage(msg);
    this.asked++;
    Atomics.store(this.ctl, slot(this.index, CMD), this.asked);
    Atomics.notify(this.ctl, slot(this.index, CMD));
  }

  private take(): FromPartition {
    const ok = waitAtLeast(this.ctl, slot(this.index, DONE), this.answered + 1, BARRIER_TIMEOUT_MS);
    const got = ok ? receiveMessageOnPort(this.port) : undefined;
    if (!got) {
      return {
        kind: 'error',
        error: {
          actor: `(partition ${this.index})`,
          event: '(barrier)',
          timePs: 0,
          detail: 'worker thread did not answer',
        },
      };
    }
    this.answered++;
    return got.message as FromPartition;
  }

  async ready(): Promise<Time> {
    // The thread may not be running yet: wait without blocking the event loop, which piscina
    // needs to hand the task over.
    const view = this.ctl;
    const i = slot(this.index, DONE);
    while (Atomics.load(view, i) < 1) {
      const w = Atomics.waitAsync(view, i, 0, 1000);
      const failed = await Promise.race([
        w.async ? w.value : Promise.resolve('ok'),
        this.done.then(
          () => 'exited',
          () => 'exited',
        ),
      ]);
      if (failed === 'exited' && Atomics.load(view, i) < 1) break;
    }
    return unwrap(this.take(), 'ready').next;
  }
  begin(end: Time, inbound: Envelope[]): void {
    this.post({ kind: 'window', end, inbound });
  }
  collect(): WindowResult {
    return unwrap(this.take(), 'window').result;
  }
  async finish() {
    this.post({ kind: 'finish' });
    const f = unwrap(this.take(), 'finished');
    this.closed = true;
    return { actors: f.actors, busiest: f.busiest, trace: f.trace };
  }
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.post({ kind: 'abort' });
    }
    await this.done.catch(() => undefined);
    this.port.close();
  }
}

let pool: Piscina | undefined;
let poolThreads = 0;

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  return here.endsWith('.ts') ? resolve(dir, 'partitionWorker.shim.mjs') : resolve(dir, 'partitionWorker.js');
}

/** Starts one long-lived piscina task per partition (min = max threads = partitions). */
async function startThreads(setups: PartitionSetup[], partitionOf: number[]): Promise<ThreadLink[]> {
  const n = setups.length;
  const barrier = createBarrier(n);
  const ctl = new Int32Array(barrier.buffer);
  if (!pool || poolThreads !== n) {
    await pool?.destroy();
    // Imported on first need: a sweep thread runs its simulations in-process and never starts a
    // pool, so it does not pay for loading piscina.
    const { Piscina } = await import('piscina');
    pool = new Piscina({
      filename: workerFile(),
      minThreads: n,
      maxThreads: n,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
    });
    poolThreads = n;
  }
  const p = pool;
  // One channel per ordered pair of partitions: messages between partitions bypass the coordinator.
  const toPeers: (MessagePort | null)[][] = setups.map(() => setups.map(() => null));
  const fromPeers: (MessagePort | null)[][] = setups.map(() => setups.map(() => null));
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      if (a === b) continue;
      const ch = new MessageChannel();
      toPeers[a]![b] = ch.port1;
      fromPeers[b]![a] = ch.port2;
    }
  }
  return setups.map((setup, i) => {
    const { port1, port2 } = new MessageChannel();
    const peerPorts = [...toPeers[i]!, ...fromPeers[i]!].filter((x): x is MessagePort => x !== null);
    const input: PartitionWorkerInput = {
      ...setup,
      port: port2,
      barrier: barrier.buffer,
      partitionOf,
      toPeers: toPeers[i]!,
      fromPeers: fromPeers[i]!,
    };
    const done = p.run(input, { transferList: [port2, ...peerPorts] }) as Promise<void>;
    return new ThreadLink(port1, ctl, i, done);
  });
}

/** Stops the worker threads (the CLI calls it before exiting; tests after each file). */
export async function shutdownWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  poolThreads = 0;
  await p?.destroy();
}
