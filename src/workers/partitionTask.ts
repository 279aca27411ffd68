import {
  type ActorSummary,
  Partition,
  type TraceRecord,
  type TraceWindow,
  type WindowResult,
} from '../actors/partition.js';
import { SimulationError } from '../actors/simulationError.js';
import type { Time } from '../actors/time.js';
import type { Envelope } from '../actors/types.js';
import type { Scenario } from '../scenario/schema.js';
import { buildPartitionActors, buildTopology, type Topology } from './compose.js';
import { createRapProbe } from './traceProbe.js';

/** Everything a partition needs to build itself: plain data, so it can cross threads. */
export interface PartitionSetup {
  scenario: Scenario;
  partition: number;
  workers: number;
  until: Time;
  maxEvents: number;
  recordTrace?: boolean;
  /** Record a full trace of the events in this window (trace export, the viewer). */
  trace?: TraceWindow;
}

/** Messages from the coordinator to a partition. */
export type ToPartition = { kind: 'window'; end: Time; inbound: Envelope[] } | { kind: 'finish' };

/** Messages from a partition to the coordinator. */
export type FromPartition =
  | { kind: 'ready'; next: Time }
  | { kind: 'window'; result: WindowResult }
  | {
      kind: 'finished';
      actors: ActorSummary[];
      busiest: { id: string; events: number };
      /** With `trace` in the setup: the recorded events of this partition, in key order. */
      trace?: { entries: TraceRecord[]; truncated: boolean };
    }
  | { kind: 'error'; error: SerializedSimError };

export interface SerializedSimError {
  actor: string;
  event: string;
  timePs: number;
  detail: string;
}

/**
 * One partition's side of the window protocol, independent of how messages travel (a
 * MessagePort between threads, or direct calls in tests). Errors become `error` messages naming
 * the actor, the event and the simulated time.
 */
export class PartitionTask {
  private partition: Partition | undefined;

  /**
   * @param topology the run's topology when the caller already built it (a partition on the
   *   coordinator's thread: building it again is a good part of a short sweep run's setup);
   *   a worker thread builds its own from the setup
   */
  constructor(
    private readonly setup: PartitionSetup,
    private readonly topology?: Topology,
  ) {}

  start(): FromPartition {
    return this.guard(() => {
      const { scenario, partition, workers, until, maxEvents } = this.setup;
      const topo = this.topology ?? buildTopology(scenario, workers);
      const actors = buildPartitionActors(scenario, topo, partition, until);
      this.partition = new Partition({
        index: partition,
        topology: topo,
        actors,
        rootSeed: scenario.seed,
        maxEvents,
        recordTrace: (this.setup.recordTrace ?? false) || this.setup.trace !== undefined,
        ...(this.setup.trace
          ? {
              traceWindow: this.setup.trace,
              // A vCPU's RAP is its core's, the core it runs on now (it follows a migration).
              probe: createRapProbe(actors, (i) => topo.coreActor[topo.coreNow[i]!] ?? i),
            }
          : {}),
      });
      return { kind: 'ready', next: this.partition.start() };
    });
  }

  handle(msg: ToPartition): FromPartition {
    return this.guard(() => {
      const p = this.partition!;
      if (msg.kind === 'window') return { kind: 'window', result: p.runWindow(msg.end, msg.inbound) };
      const trace = this.setup.trace ? p.recordedTrace() : undefined;
      return {
        kind: 'finished',
        actors: p.summarize(),
        busiest: p.busiestActor(),
        ...(trace ? { trace } : {}),
      };
    });
  }

  private guard(fn: () => FromPartition): FromPartition {
    try {
      return fn();
    } catch (err) {
      if (err instanceof SimulationError) return { kind: 'error', error: err.toJSON() };
      const detail = err instanceof Error ? err.message : String(err);
      return { kind: 'error', error: { actor: '(kernel)', event: '(setup)', timePs: 0, detail } };
    }
  }
}
