import type { HostedActor } from '../actors/hostedActor.js';
import { createMachineActor } from '../actors/machineActor.js';
import type { PartitionTopology } from '../actors/partition.js';
import { Stream } from '../actors/prng.js';
import type { Time } from '../actors/time.js';
import type { RapCheckerConfig } from '../check/rapChecker.js';
import { MigrationDomain } from '../host/migrationDomain.js';
import { decodeContext } from '../hw/context.js';
import { CoreHw } from '../hw/core.js';
import { pcpuMachine } from '../hw/pcpuMachine.js';
import { resolveTiming, type Timing } from '../hw/timing.js';
import { NativeCpu } from '../os/cpu.js';
import { LinuxOs } from '../os/linuxOs.js';
import type { WorkloadParams } from '../os/workload.js';
import type { Scenario } from '../scenario/schema.js';
import type { Vm } from '../scenario/vm.js';
import { buildVmCoreActors, guestCpuid, vmList } from './composeVms.js';
import { type MigrationPlan, partitionCores, planMigration } from './migrationPlan.js';
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
  /** Which vCPUs may migrate, between which cores (see migrationPlan.ts). */
  migration: MigrationPlan;
  /**
   * The core an actor is on now (a vCPU follows its thread; pCPUs never move). Link latencies
   * read it, so a migrated vCPU is 0 ps from its new pCPU. Only a migration domain's own
   * partition writes its vCPUs' entries; any other reader only needs their socket, which
   * migration never changes.
   */
  coreNow: number[];
  /** The core each actor starts on. */
  readonly homeCore: readonly number[];
}

/** Actor id of a physical core; zero-padded so that the sorted order is the core order. */
export function pcpuId(core: number): string {
  return `pcpu:${String(core).padStart(4, '0')}`;
}

/** Actor id of a vCPU: VM index and vCPU index, zero-padded (names are for reports). */
export function vcpuId(vm: number, vcpu: number): string {
  return `vcpu:${String(vm).padStart(3, '0')}:${String(vcpu).padStart(4, '0')}`;
}

/** Where each vCPU runs. */
export interface VcpuPlacement {
  /** Global VM index: L1 VMs in file order, then the L2 VMs of each L1 (see `vmList`). */
  vm: number;
  vcpu: number;
  core: number;
  /** 1 for an ordinary VM, 2 for an L2 run by an L1 guest hypervisor. */
  level: 1 | 2;
}

/** The L1 vCPU that runs vCPU `i` of an L2: its `pin`, else the L1 vCPU of the same index. */
export function l1VcpuOf(l2: Vm, i: number): number {
  return l2.pin?.[i] ?? i;
}

/**
 * Places every vCPU on a core: its `pin` if given, else the least-loaded core (ties to the lowest
 * index), counting pinned vCPUs first — so VMs of N vCPUs on N cores put vCPU i of every VM on
 * core i, and a core runs several vCPUs only when there are more vCPUs than cores (overcommit,
 * served by the host scheduler). Unpinned vCPUs may migrate later within their domain
 * (`host.scheduler.migration`, see migrationPlan.ts).
 */
export function placeVcpus(s: Scenario): VcpuPlacement[] {
  const out: VcpuPlacement[] = [];
  const load = Array.from({ length: s.hardware.cores }, () => 0);
  for (const vm of s.vms) for (const c of vm.pin ?? []) load[c] = (load[c] ?? 0) + 1;
  s.vms.forEach((vm, v) => {
    for (let i = 0; i < vm.vcpus; i++) {
      let core = vm.pin?.[i];
      if (core === undefined) {
        core = 0;
        for (let c = 1; c < load.length; c++) if (load[c]! < load[core]!) core = c;
        load[core]!++;
      }
      out.push({ vm: v, vcpu: i, core, level: 1 });
    }
  });
  // An L2's vCPU i runs on its L1's vCPU pin[i] (default i), so on that vCPU's core (docs/domain.md §3).
  for (const info of vmList(s)) {
    if (info.level !== 2) continue;
    for (let i = 0; i < info.vm.vcpus; i++) {
      const l1Vcpu = l1VcpuOf(info.vm, i);
      const host = out.find((p) => p.vm === info.parent && p.vcpu === l1Vcpu)!;
      out.push({ vm: info.index, vcpu: i, core: host.core, level: 2 });
    }
  }
  return out;
}

/**
 * A scenario's overrides of the timing table: `hardware.latency`, `host.latency`, and the host
 * scheduler's `slice` and `haltPoll`, which are the table's `schedSlice` and `haltPoll` under
 * their interface.md names (checkTopology refuses a scenario that sets one of them twice).
 */
export function timingOverrides(s: Scenario): Record<string, number> {
  const { slice, haltPoll } = s.host.scheduler;
  return {
    ...s.hardware.latency,
    ...s.host.latency,
    ...(slice !== undefined ? { schedSlice: slice } : {}),
    ...(haltPoll !== undefined ? { haltPoll } : {}),
  };
}

/**
 * Builds the topology of a scenario for `workers` partitions. Cores are split into contiguous,
 * balanced blocks (so a block boundary falls on a socket boundary whenever the counts allow it,
 * which makes the lookahead the cross-socket latency), keeping every active migration domain in
 * one block. A vCPU lives in its core's partition and talks to the core that runs it over a
 * zero-latency link (the world switch carries its own cost).
 */
export function buildTopology(s: Scenario, workers: number): Topology {
  const n = s.hardware.cores;
  const timing = resolveTiming(s.hardware.clockHz, timingOverrides(s));
  const vcpus = placeVcpus(s);
  const coreOfId = new Map<string, number>();
  for (let c = 0; c < n; c++) coreOfId.set(pcpuId(c), c);
  for (const v of vcpus) coreOfId.set(vcpuId(v.vm, v.vcpu), v.core);
  const ids = [...coreOfId.keys()].sort();
  const homeCore = ids.map((id) => coreOfId.get(id)!);
  const coreOfActor = homeCore.slice();
  const coreActor = Array.from({ length: n }, (_, c) => ids.indexOf(pcpuId(c)));
  const socketOfCore = Array.from({ length: n }, (_, c) => Math.floor(c / s.hardware.coresPerSocket));
  const migration = planMigration(s, vcpus);
  const partitionOfCore = partitionCores(n, workers, migration.activeDomainOfCore);
  const partitions = n === 0 ? 1 : Math.max(...partitionOfCore) + 1;
  const partitionOf = homeCore.map((c) => partitionOfCore[c]!);
  const socketOfActor = homeCore.map((c) => socketOfCore[c]!);
  const latency = (src: number, dst: number): Time =>
    src === dst || coreOfActor[src] === coreOfActor[dst]
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
  return {
    ids,
    partitionOf,
    latency,
    partitions,
    lookahead,
    coreActor,
    socketOfCore,
    timing,
    migration,
    coreNow: coreOfActor,
    homeCore,
  };
}

/** The processes (address spaces) with a thread on each core, and each process's cores. */
export function placeHostProcesses(
  s: Scenario,
  vmCores: ReadonlySet<number> = new Set(),
): { onCore: number[][]; coresOf: number[][] } {
  const n = s.hardware.cores;
  const count = s.hostProcesses.count;
  const spans = s.hostProcesses.threadsPerProcess;
  const coresOf: number[][] = [];
  for (let p = 0; p < count; p++) {
    const span = spans.length === 0 ? n : Math.min(n, spans[p % spans.length]!);
    // A core that runs vCPUs runs vCPU threads and host kernel threads (`host.tasks`), not the
    // host's user processes: a process's span skips it.
    coresOf.push(Array.from({ length: span }, (_, k) => k).filter((k) => !vmCores.has(k)));
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
    emulatedMovCr3: h.emulatedMovCr3,
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
  const actors = new Map<number, HostedActor>();
  const vcpus = placeVcpus(s);
  const vmCores = new Set(vcpus.map((v) => v.core));
  // Every run starts from the placement (a topology may serve several runs of a sweep).
  topo.partitionOf.forEach((p, a) => {
    if (p === partition) topo.coreNow[a] = topo.homeCore[a]!;
  });
  const domains = migrationDomains(s, topo, partition, vcpus);
  for (const c of vmCores) {
    if (topo.partitionOf[topo.coreActor[c]!] !== partition) continue;
    for (const [index, actor] of buildVmCoreActors(s, topo, c, vcpus, until, domains))
      actors.set(index, actor);
  }
  const { onCore, coresOf } = placeHostProcesses(s, vmCores);
  const cpuid = hostCpuid(s);
  const workload = hostWorkload(s);
  const peers = topo.coreActor.slice();
  // Each process's mm_cpumask as actor indices, built once and shared by every core's OS: the
  // same packed-integer array kind for every process, so the shootdown path that filters it sees
  // one array shape (a `.map` result per call mixed holey and packed arrays and deoptimized it).
  const masks = coresOf.map((cores) => {
    const mask: number[] = [];
    for (const k of cores) mask.push(topo.coreActor[k]!);
    return mask;
  });
  const noCores: number[] = [];
  for (let c = 0; c < s.hardware.cores; c++) {
    const index = topo.coreActor[c]!;
    if (topo.partitionOf[index] !== partition || vmCores.has(c)) continue;
    const id = topo.ids[index]!;
    const actor = createMachineActor(
      id,
      pcpuMachine,
      (port) => {
        const core = buildCore(s, topo, c);
        const sw = new LinuxOs({
          cpu: new NativeCpu(core),
          port,
          cpuid,
          workload,
          processes: onCore[c]!,
          cpumask: (p) => masks[p] ?? noCores,
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

/** The migration domains this partition owns, by domain index, with their member vCPU actors. */
function migrationDomains(
  s: Scenario,
  topo: Topology,
  partition: number,
  vcpus: readonly VcpuPlacement[],
): Map<number, MigrationDomain> {
  const out = new Map<number, MigrationDomain>();
  const { activeDomainOfCore } = topo.migration;
  const index = new Map(topo.ids.map((id, i) => [id, i]));
  for (const d of new Set(activeDomainOfCore)) {
    if (d < 0) continue;
    const first = activeDomainOfCore.indexOf(d);
    if (topo.partitionOf[topo.coreActor[first]!] !== partition) continue;
    const members = new Set(
      vcpus.filter((v) => activeDomainOfCore[v.core] === d).map((v) => index.get(vcpuId(v.vm, v.vcpu))!),
    );
    const size = activeDomainOfCore.filter((x) => x === d).length;
    out.set(
      d,
      new MigrationDomain(members, size, s.host.scheduler.migrationCost, (actor, core) => {
        topo.coreNow[actor] = core;
      }),
    );
  }
  return out;
}

/**
 * The hardware of core `c` as the scenario describes it. Its microarchitectural draws come from
 * a stream of their own, so they never shift the OS's draws.
 */
export function buildCore(s: Scenario, topo: Topology, c: number): CoreHw {
  return new CoreHw(
    {
      index: c,
      socket: topo.socketOfCore[c]!,
      spec: s.hardware.spec,
      rapEntries: s.hardware.rapEntries,
      microarchClears: s.hardware.microarchClears,
      ibpbClearsRap: s.hardware.ibpbClearsRap,
      timing: topo.timing,
    },
    Stream.child(s.seed, `${pcpuId(c)}#microarch`),
  );
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

/** What the checkers need to judge beliefs: the spec, each view's CPUID, the nesting. */
export function checkerConfig(s: Scenario): RapCheckerConfig {
  const cpuid = hostCpuid(s);
  const vms = vmList(s);
  const guests = vms.map((v) => guestCpuid(s, v.index));
  return {
    spec: s.hardware.spec,
    cpuidOf: (ctx) => {
      const c = decodeContext(ctx);
      const g = c.world === 'guest' ? guests[c.vm] : undefined;
      return g
        ? { eraps: g.eraps, rapEntries: g.rapEntries }
        : { eraps: cpuid.eraps, rapEntries: cpuid.rapEntries };
    },
    nestedParent: (vm) => vms[vm]?.parent,
    vmName: (vm) => vms[vm]?.vm.name ?? `vm${vm}`,
  };
}
