import type { ActorSummary } from '../actors/partition.js';
import { NS, toNs } from '../actors/time.js';
import type { KvmStats } from '../host/kvmVcpu.js';
import type { Timing } from '../hw/timing.js';
import type { LinuxOsStats } from '../os/linuxOs.js';
import type { CoreStats } from '../workers/compose.js';
import { type Percentiles, percentiles } from './percentiles.js';

export interface ShootdownGroup {
  targets: number;
  crossSocket: boolean;
  count: number;
  latencyNs: Percentiles;
}

/** The report's `metrics` (interface.md), summed over actors in index order. */
export interface Metrics {
  rap: {
    returns: number;
    predicted: number;
    mispredicted: number;
    underflows: number;
    clears: Record<string, number>;
    stuffingCalls: number;
  };
  exits: Record<string, number>;
  worldSwitches: number;
  /** VMRUNs executed with CLEAR_RAP set. */
  clearRapVmruns: number;
  contextSwitches: number;
  tlb: { hits: number; misses: number; flushes: number; staleHits: number };
  shootdowns: {
    count: number;
    latencyNs: Percentiles;
    /** Latency by number of targets and whether the targets span sockets. */
    byTargets: ShootdownGroup[];
  };
  /** Simulated time spent on safety and its side effects, in ns. */
  costNs: { stuffing: number; mispredictions: number; flushIpiHandlers: number; exits: number };
}

/** Folds per-actor statistics into the report's metrics. */
export function collectMetrics(actors: readonly ActorSummary[], timing: Timing): Metrics {
  const m: Metrics = {
    rap: { returns: 0, predicted: 0, mispredicted: 0, underflows: 0, clears: {}, stuffingCalls: 0 },
    exits: {},
    worldSwitches: 0,
    clearRapVmruns: 0,
    contextSwitches: 0,
    tlb: { hits: 0, misses: 0, flushes: 0, staleHits: 0 },
    shootdowns: { count: 0, latencyNs: percentiles([]), byTargets: [] },
    costNs: { stuffing: 0, mispredictions: 0, flushIpiHandlers: 0, exits: 0 },
  };
  const latencies: number[] = [];
  const groups = new Map<string, { targets: number; crossSocket: boolean; samples: number[] }>();
  let ipis = 0;
  let exitPs = 0;
  for (const a of actors) {
    const st = a.stats as { core?: CoreStats; os?: LinuxOsStats; kvm?: KvmStats };
    if (st.kvm) {
      for (const [reason, n] of Object.entries(st.kvm.exits)) m.exits[reason] = (m.exits[reason] ?? 0) + n;
      m.worldSwitches += st.kvm.worldSwitches;
      m.clearRapVmruns += st.kvm.clearRapVmruns;
      exitPs += st.kvm.timeInExitsPs;
    }
    if (st.core) {
      const r = st.core.rap;
      m.rap.returns += r.returns;
      m.rap.predicted += r.predicted;
      m.rap.mispredicted += r.mispredicted;
      m.rap.underflows += r.underflows;
      m.rap.stuffingCalls += st.core.stuffingCalls;
      for (const [cause, n] of Object.entries(st.core.clears))
        m.rap.clears[cause] = (m.rap.clears[cause] ?? 0) + n;
      m.tlb.hits += st.core.tlb.hits;
      m.tlb.misses += st.core.tlb.misses;
      m.tlb.flushes += st.core.tlb.flushes;
      m.tlb.staleHits += st.core.tlb.staleHits;
    }
    if (st.os) {
      m.contextSwitches += st.os.contextSwitches;
      ipis += st.os.flushIpisHandled;
      for (const sd of st.os.shootdownLatencies) {
        const ns = toNs(sd.latency);
        latencies.push(ns);
        const key = `${sd.targets}|${sd.crossSocket}`;
        const g = groups.get(key) ?? { targets: sd.targets, crossSocket: sd.crossSocket, samples: [] };
        g.samples.push(ns);
        groups.set(key, g);
      }
    }
  }
  m.rap.clears = Object.fromEntries(Object.entries(m.rap.clears).sort(([a], [b]) => a.localeCompare(b)));
  m.shootdowns.count = latencies.length;
  m.shootdowns.latencyNs = percentiles(latencies);
  m.shootdowns.byTargets = [...groups.values()]
    .sort((a, b) => a.targets - b.targets || Number(a.crossSocket) - Number(b.crossSocket))
    .map((g) => ({
      targets: g.targets,
      crossSocket: g.crossSocket,
      count: g.samples.length,
      latencyNs: percentiles(g.samples),
    }));
  m.costNs.stuffing = Math.round((m.rap.stuffingCalls * timing.rapStuff) / 32 / NS);
  m.costNs.mispredictions = Math.round((m.rap.mispredicted * timing.retMispredict) / NS);
  m.costNs.flushIpiHandlers = Math.round((ipis * timing.flushIpiHandler) / NS);
  m.costNs.exits = Math.round(exitPs / NS);
  m.exits = Object.fromEntries(Object.entries(m.exits).sort(([a], [b]) => a.localeCompare(b)));
  return m;
}
