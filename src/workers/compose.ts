import type { HostedActor } from '../actors/hostedActor.js';
import { createMachineActor } from '../actors/machineActor.js';
import type { PartitionTopology } from '../actors/partition.js';
import { Stream } from '../actors/prng.js';
import type { Time } from '../actors/time.js';
import type { RapCheckerConfig } from '../check/rapChecker.js';
import { CoreHw } from '../hw/core.js';
import { pcpuMachine } from '../hw/pcpuMachine.js';
import { resolveTiming, type Timing } from '../hw/timing.js';
import { NativeCpu } from '../os/cpu.js';
import { LinuxOs } from '../os/linuxOs.js';
import type { WorkloadParams } from '../os/workload.js';
import type { Scenario } from '../scenario/schema.js';
import type { RapEntryView } from './traceProbe.js';

/** The wired shape of a run: actors, where they live, and the links between them. */
export interface Topology extends PartitionTopology {
  partitions: number;
  /** Smallest latency of a link that crosses partitions (Infinity with one partition). */
  lookahead: Time;
  /** Core number → actor index, and socket per core. */
  coreActor: number[];
  socketOfCore: number[];
  timing: Timing;
}

/** Actor id of a physical core; zero-padded so that the sorted order is the core order. */
export function pcpuId(core: number): string {
  return `pcpu:${String(core).padStart(4, '0')}`;
}

/**
 * Builds the topology of a scenario for `workers` partitions. Cores are split into contiguous,
 * balanced blocks (so a block boundary falls on a socket boundary whenever the counts allow it,
 * which makes the lookahead the cross-socket latency).
 */
export function buildTopology(s: Scenario, workers: number): Topology {
  const n = s.hardware.cores;
  const timing = resolveTiming(s.hardware.clockHz, { ...s.hardware.latency, ...s.host.latency });
  const ids = Array.from({ length: n }, (_, c) => pcpuId(c)).sort();
  const coreActor = Array.from({ length: n }, (_, c) => ids.indexOf(pcpuId(c)));
  const socketOfCore = Array.from({ length: n }, (_, c) => Math.floor(c / s.hardware.coresPerSocket));
  const partitions = Math.max(1, Math.min(workers, n));
  const partitionOfCore = Array.from({ length: n }, (_, c) => Math.floor((c * partitions) / n));
  const partitionOf: number[] = new Array(ids.length).fill(0);
  const socketOfActor: number[] = new Array(ids.length).fill(0);
  for (let c = 0; c < n; c++) {
    partitionOf[coreActor[c]!] = partitionOfCore[c]!;
    socketOfActor[coreActor[c]!] = socketOfCore[c]!;
  }
  const latency = (src: number, dst: number): Time =>
    src === dst
      ? 0
      : socketOfActor[src] === socketOfActor[dst]
        ? timing.ipiSameSocket
        : timing.ipiCrossSocket;
  let lookahead = Number.POSITIVE_INFINITY;
  for (let a = 0; a < ids.length; a++) {
    for (let b = 0; b < ids.length; b++) {
      if (partitionOf[a] !== partitionOf[b]) lookahead = Math.min(lookahead, latency(a, b));
    }
  }
  if (partitions > 1 && !(lookahead > 0)) {
    throw new Error(`lookahead must be > 0 across partitions, found ${lookahead} ps`);
  }
  return { ids, partitionOf, latency, partitions, lookahead, coreActor, socketOfCore, timing };
}

/** The processes (address spaces) with a thread on each core, and each process's cores. */
export function placeHostProcesses(s: Scenario): { onCore: number[][]; coresOf: number[][] } {
  const n = s.hardware.cores;
  const count = s.hostProcesses.count;
  const spans = s.hostProcesses.threadsPerProcess;
  const coresOf: number[][] = [];
  for (let p = 0; p < count; p++) {
    const span = spans.length === 0 ? n : Math.min(n, spans[p % spans.length]!);
    coresOf.push(Array.from({ length: span }, (_, k) => k));
  }
  const onCore: number[][] = Array.from({ length: n }, () => []);
  coresOf.forEach((cores, p) => {
    for (const c of cores) onCore[c]!.push(p);
  });
  return { onCore, coresOf };
}

/** What the host OS reads from CPUID on this hardware (docs/domain.md §2). */
export function hostCpuid(s: Scenario): {
  eraps: boolean;
  rapEntries: number;
  pcid: boolean;
  invpcid: boolean;
} {
  const eraps = s.hardware.spec !== 'legacy';
  // Without ERAPS CPUID reports no RapSize, so software assumes the legacy 32 entries.
  return { eraps, rapEntries: eraps ? s.hardware.rapEntries : 32, pcid: true, invpcid: true };
}

function hostWorkload(s: Scenario): WorkloadParams {
  const h = s.hostProcesses;
  return {
    processes: h.count,
    stuffing: h.stuffing,
    contextSwitch: h.contextSwitch,
    globalFlush: h.globalFlush,
    shootdown: h.shootdown,
    localFlush: h.localFlush,
    hlt: h.hlt,
    callDepth: h.callDepth,
    workingSetPages: h.workingSetPages,
  };
}

/**
 * Creates the actors of one partition: for a bare-metal scenario, one pCPU machine per core,
 * each running the host OS over its own RAP and TLB. Called inside the worker that hosts the
 * partition, so machines never cross threads.
 */
export function buildPartitionActors(
  s: Scenario,
  topo: Topology,
  partition: number,
  until: Time,
): Map<number, HostedActor> {
  if (s.vms.length > 0) {
    throw new Error(
      'virtual machines are not modelled yet: rapsim runs bare-metal scenarios only (no `vms`)',
    );
  }
  const actors = new Map<number, HostedActor>();
  const { onCore, coresOf } = placeHostProcesses(s);
  const cpuid = hostCpuid(s);
  const workload = hostWorkload(s);
  const peers = topo.coreActor.slice();
  for (let c = 0; c < s.hardware.cores; c++) {
    const index = topo.coreActor[c]!;
    if (topo.partitionOf[index] !== partition) continue;
    const id = topo.ids[index]!;
    const actor = createMachineActor(
      id,
      pcpuMachine,
      (port) => {
        const core = new CoreHw(
          {
            index: c,
            socket: topo.socketOfCore[c]!,
            spec: s.hardware.spec,
            rapEntries: s.hardware.rapEntries,
            microarchClears: s.hardware.microarchClears,
            ibpbClearsRap: s.hardware.ibpbClearsRap,
            timing: topo.timing,
          },
          Stream.child(s.seed, `${id}#microarch`),
        );
        const sw = new LinuxOs({
          cpu: new NativeCpu(core),
          port,
          cpuid,
          workload,
          processes: onCore[c]!,
          cpumask: (p) => (coresOf[p] ?? []).map((k) => topo.coreActor[k]!),
          socketOf: (a) => topo.socketOfCore[topo.coreActor.indexOf(a)]!,
          script: s.hostProcesses.script[String(c)] ?? [],
          actorOfCore: (k) => topo.coreActor[k]!,
          until,
        });
        return { port, core, sw, peers };
      },
      (a) => {
        const ctx = a.getSnapshot().context;
        return { core: coreStats(ctx.core), os: ctx.sw.stats() };
      },
    );
    actors.set(index, actor);
  }
  return actors;
}

/** Both logical stacks of an ERAPS RAP (one object on legacy parts). */
function sumRapStats(core: CoreHw): CoreStats['rap'] {
  const a = core.rapHost.stats;
  if (core.rapGuest === core.rapHost) return { ...a };
  const b = core.rapGuest.stats;
  return {
    returns: a.returns + b.returns,
    predicted: a.predicted + b.predicted,
    mispredicted: a.mispredicted + b.mispredicted,
    underflows: a.underflows + b.underflows,
    pushes: a.pushes + b.pushes,
    overflows: a.overflows + b.overflows,
  };
}

/** Statistics of a core as plain data. */
export function coreStats(core: CoreHw): CoreStats {
  return {
    rap: sumRapStats(core),
    tlb: { ...core.tlb.stats },
    clears: { ...core.clears },
    stuffingCalls: core.stuffingCalls,
    rapContents: {
      host: core.rapHost.snapshot(),
      guest: core.rapGuest === core.rapHost ? null : core.rapGuest.snapshot(),
    },
  };
}

export interface CoreStats {
  rap: {
    returns: number;
    predicted: number;
    mispredicted: number;
    underflows: number;
    pushes: number;
    overflows: number;
  };
  tlb: { hits: number; misses: number; staleHits: number; flushes: number };
  clears: Record<string, number>;
  stuffingCalls: number;
  /** RAP contents, oldest first (trace export and the viewer read them; the report does not). */
  rapContents: { host: RapEntryView[]; guest: RapEntryView[] | null };
}

/** What the checkers need to judge beliefs: the spec and each view's CPUID. */
export function checkerConfig(s: Scenario): RapCheckerConfig {
  const cpuid = hostCpuid(s);
  return {
    spec: s.hardware.spec,
    cpuidOf: () => ({ eraps: cpuid.eraps, rapEntries: cpuid.rapEntries }),
    vmName: (vm) => s.vms[vm]?.name ?? `vm${vm}`,
  };
}
