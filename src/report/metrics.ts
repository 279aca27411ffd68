import type { ActorSummary } from '../actors/partition.js';
import { NS, toNs } from '../actors/time.js';
import type { HostSchedStats } from '../host/hostScheduler.js';
import type { KvmStats } from '../host/kvmVcpu.js';
import type { Timing } from '../hw/timing.js';
import type { LinuxOsStats } from '../os/linuxOs.js';
import type { CoreStats } from '../workers/compose.js';
import { type Percentiles, percentiles } from './percentiles.js';

export interface ShootdownGroup {
  /** Targets in the process's CPU mask (the initiator's CPU excepted). */
  targets: number;
  crossSocket: boolean;
  count: number;
  latencyNs: Percentiles;
  /**
   * Of those, how many a shootdown interrupted on average (they took the flush IPI, or were
   * kicked out for the host to flush): the rest were skipped (lazy TLB mode, another address
   * space) or deferred (PV TLB flush, Hyper-V's FIFO). Two decimals.
   */
  interruptedMean: number;
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
    /** Latency of the shootdowns each VM's guest initiated (VMs with none are left out). */
    byVm: { vm: string; count: number; latencyNs: Percentiles }[];
    /** Latency histogram: power-of-two buckets in ns, [fromNs, toNs). */
    histogram: { fromNs: number; toNs: number; count: number }[];
    /**
     * The initiators' wait, summed over shootdowns and split along each one's critical target:
     * interrupt and acknowledgement in flight, the target waiting to run (preempted or halted),
     * and the target's handler (IRQs-off wait included).
     */
    waitNs: { delivery: number; preemptedWait: number; handler: number };
    /**
     * Exits caused by shootdowns per shootdown (IPI hypercalls, kicks to inject, AVIC's
     * incomplete-IPI exits, and with NPT off the flushes' intercepted INVLPGs); 0 on bare metal.
     */
    exitsPerShootdown: number;
    /** Targets skipped by PV TLB flush (flushed by the host before their next entry). */
    pvDeferredTargets: number;
    /** Targets flushed by the host for a Hyper-V flush hypercall. */
    hvFlushedTargets: number;
    /**
     * Targets skipped because they were idle in lazy TLB mode (should_flush_tlb): no interrupt;
     * each flushes its address space when it leaves the idle loop.
     */
    lazySkippedTargets: number;
    /**
     * Targets skipped because they ran another address space (should_flush_tlb: loaded_mm): no
     * interrupt; each flushes the address space when it switches back to it.
     */
    otherMmSkippedTargets: number;
  };
  /** Useful work: workload operations (CALL, RET, page access) completed, per simulated second. */
  work: { ops: number; opsPerSecond: number; byVm: { vm: string; ops: number; opsPerSecond: number }[] };
  /** The host scheduler (VM scenarios): vCPU switches, IBPBs, kicks, steal time per vCPU. */
  scheduler: {
    vcpuSwitches: number;
    ibpbs: number;
    kicks: { interrupt: number; preempt: number };
    /** vCPU threads moved between pCPUs of a migration domain. */
    migrations: number;
    /** PAUSE exits (PAUSE-loop exiting), and those after which the spinner yielded its pCPU. */
    pleExits: number;
    directedYields: number;
    /** Targets a spinner's yield_to made their run queue's next buddy (with or without yielding). */
    boosts: number;
    vcpus: {
      vm: string;
      vcpu: number;
      /** Its thread's nice value (`vms[].nice`): its EEVDF weight. */
      nice: number;
      stealNs: number;
      /** The longest single wait for the pCPU. */
      maxStealNs: number;
      runNs: number;
      preemptions: number;
      wakeups: number;
      pvDeferredFlushes: number;
      migrations: number;
      pleExits: number;
      directedYields: number;
      /** Times it was boosted (made the next buddy by a spinner's yield_to). */
      boosted: number;
    }[];
    /** Host kernel threads beside the vCPUs (`host.tasks`): CPU time and scheduling latency. */
    hostTasks: {
      name: string;
      core: number;
      nice: number;
      bursts: number;
      runNs: number;
      waitNs: number;
      maxWaitNs: number;
    }[];
  };
  /** Simulated time spent on safety and its side effects, in ns. */
  costNs: { stuffing: number; mispredictions: number; flushIpiHandlers: number; exits: number };
}

/**
 * What {@link collectMetrics} accumulates over the actors before it derives percentiles, sorts
 * and prices: the report's metrics plus the raw samples.
 */
interface Fold {
  m: Metrics;
  latencies: number[];
  groups: Map<string, { targets: number; crossSocket: boolean; samples: number[]; interrupted: number }>;
  ipis: number;
  flushExits: number;
  exitPs: number;
  waitPs: { delivery: number; preemptedWait: number; handler: number };
  workByVm: Map<string, number>;
  shootdownsByVm: Map<string, number[]>;
}

/**
 * Folds per-actor statistics into the report's metrics.
 *
 * One small function per kind of statistics, not one large one: a sweep thread calls this once
 * a run, and V8 optimizes it on every thread anew, so its size is compile time a second sweep
 * thread pays again (one 300-line function took ≈ 170 ms of TurboFan per thread).
 */
export function collectMetrics(
  actors: readonly ActorSummary[],
  timing: Timing,
  simulatedPs: number,
): Metrics {
  const f: Fold = {
    m: emptyMetrics(),
    latencies: [],
    groups: new Map(),
    ipis: 0,
    flushExits: 0,
    exitPs: 0,
    waitPs: { delivery: 0, preemptedWait: 0, handler: 0 },
    workByVm: new Map(),
    shootdownsByVm: new Map(),
  };
  for (const a of actors) {
    const st = a.stats as {
      core?: CoreStats;
      os?: LinuxOsStats;
      kvm?: KvmStats;
      sched?: HostSchedStats;
      vm?: string;
    };
    if (st.sched) foldSched(f.m, st.sched);
    if (st.kvm) foldKvm(f, st.kvm);
    if (st.core) foldCore(f.m, st.core);
    if (st.os) foldOs(f, st.os, st.vm);
  }
  return finish(f, timing, simulatedPs);
}

function emptyMetrics(): Metrics {
  return {
    rap: { returns: 0, predicted: 0, mispredicted: 0, underflows: 0, clears: {}, stuffingCalls: 0 },
    exits: {},
    worldSwitches: 0,
    clearRapVmruns: 0,
    contextSwitches: 0,
    tlb: { hits: 0, misses: 0, flushes: 0, staleHits: 0 },
    shootdowns: {
      count: 0,
      latencyNs: percentiles([]),
      byTargets: [],
      byVm: [],
      histogram: [],
      waitNs: { delivery: 0, preemptedWait: 0, handler: 0 },
      exitsPerShootdown: 0,
      pvDeferredTargets: 0,
      hvFlushedTargets: 0,
      lazySkippedTargets: 0,
      otherMmSkippedTargets: 0,
    },
    work: { ops: 0, opsPerSecond: 0, byVm: [] },
    scheduler: {
      vcpuSwitches: 0,
      ibpbs: 0,
      kicks: { interrupt: 0, preempt: 0 },
      migrations: 0,
      pleExits: 0,
      directedYields: 0,
      boosts: 0,
      vcpus: [],
      hostTasks: [],
    },
    costNs: { stuffing: 0, mispredictions: 0, flushIpiHandlers: 0, exits: 0 },
  };
}

function foldSched(m: Metrics, sched: HostSchedStats): void {
  m.scheduler.vcpuSwitches += sched.vcpuSwitches;
  m.scheduler.ibpbs += sched.ibpbs;
  m.scheduler.kicks.interrupt += sched.kicks.interrupt;
  m.scheduler.kicks.preempt += sched.kicks.preempt;
  for (const t of sched.tasks) {
    m.scheduler.hostTasks.push({
      name: t.name,
      core: t.core,
      nice: t.nice,
      bursts: t.bursts,
      runNs: toNs(t.runPs),
      waitNs: toNs(t.waitPs),
      maxWaitNs: toNs(t.maxWaitPs),
    });
  }
  for (const t of sched.threads) {
    m.shootdowns.pvDeferredTargets += t.deferredFlushes;
    m.shootdowns.hvFlushedTargets += t.hvFlushes;
    m.scheduler.migrations += t.migrations;
    m.scheduler.pleExits += t.pleExits;
    m.scheduler.directedYields += t.directedYields;
    m.scheduler.boosts += t.boosted;
    m.scheduler.vcpus.push({
      vm: t.vm,
      vcpu: t.vcpu,
      nice: t.nice,
      stealNs: toNs(t.stealPs),
      maxStealNs: toNs(t.maxStealPs),
      runNs: toNs(t.runPs),
      preemptions: t.preemptions,
      wakeups: t.wakeups,
      pvDeferredFlushes: t.deferredFlushes,
      migrations: t.migrations,
      pleExits: t.pleExits,
      directedYields: t.directedYields,
      boosted: t.boosted,
    });
  }
}

function foldKvm(f: Fold, kvm: KvmStats): void {
  const m = f.m;
  for (const [reason, n] of Object.entries(kvm.exits)) m.exits[reason] = (m.exits[reason] ?? 0) + n;
  m.worldSwitches += kvm.worldSwitches;
  m.clearRapVmruns += kvm.clearRapVmruns;
  f.exitPs += kvm.timeInExitsPs;
}

function foldCore(m: Metrics, core: CoreStats): void {
  const r = core.rap;
  m.rap.returns += r.returns;
  m.rap.predicted += r.predicted;
  m.rap.mispredicted += r.mispredicted;
  m.rap.underflows += r.underflows;
  m.rap.stuffingCalls += core.stuffingCalls;
  for (const [cause, n] of Object.entries(core.clears)) m.rap.clears[cause] = (m.rap.clears[cause] ?? 0) + n;
  m.tlb.hits += core.tlb.hits;
  m.tlb.misses += core.tlb.misses;
  m.tlb.flushes += core.tlb.flushes;
  m.tlb.staleHits += core.tlb.staleHits;
}

function foldOs(f: Fold, os: LinuxOsStats, vm: string | undefined): void {
  f.m.contextSwitches += os.contextSwitches;
  f.ipis += os.flushIpisHandled;
  f.m.shootdowns.lazySkippedTargets += os.lazySkips;
  f.m.shootdowns.otherMmSkippedTargets += os.otherMmSkips;
  f.flushExits += os.shootdownFlushExits;
  f.m.work.ops += os.workOps;
  if (vm !== undefined) f.workByVm.set(vm, (f.workByVm.get(vm) ?? 0) + os.workOps);
  let own: number[] | undefined;
  if (vm !== undefined) {
    own = f.shootdownsByVm.get(vm) ?? [];
    f.shootdownsByVm.set(vm, own);
  }
  for (const sd of os.shootdownLatencies) {
    f.waitPs.delivery += sd.delivery;
    f.waitPs.preemptedWait += sd.preemptedWait;
    f.waitPs.handler += sd.handler;
    const ns = toNs(sd.latency);
    f.latencies.push(ns);
    own?.push(ns);
    const key = `${sd.targets}|${sd.crossSocket}`;
    const g = f.groups.get(key) ?? {
      targets: sd.targets,
      crossSocket: sd.crossSocket,
      samples: [],
      interrupted: 0,
    };
    g.samples.push(ns);
    g.interrupted += sd.interrupted;
    f.groups.set(key, g);
  }
}

/** Percentiles, groups and histogram from the samples; sorted maps; simulated costs. */
function finish(f: Fold, timing: Timing, simulatedPs: number): Metrics {
  const { m, latencies } = f;
  const perSecond = (n: number): number => (simulatedPs > 0 ? Math.round((n * 1e12) / simulatedPs) : 0);
  m.rap.clears = Object.fromEntries(Object.entries(m.rap.clears).sort(([a], [b]) => a.localeCompare(b)));
  m.shootdowns.count = latencies.length;
  m.shootdowns.latencyNs = percentiles(latencies);
  m.shootdowns.byTargets = [...f.groups.values()]
    .sort((a, b) => a.targets - b.targets || Number(a.crossSocket) - Number(b.crossSocket))
    .map((g) => ({
      targets: g.targets,
      crossSocket: g.crossSocket,
      count: g.samples.length,
      latencyNs: percentiles(g.samples),
      interruptedMean: Math.round((g.interrupted / g.samples.length) * 100) / 100,
    }));
  m.shootdowns.byVm = [...f.shootdownsByVm]
    .filter(([, samples]) => samples.length > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([vm, samples]) => ({ vm, count: samples.length, latencyNs: percentiles(samples) }));
  m.shootdowns.histogram = histogram(latencies);
  m.shootdowns.waitNs = {
    delivery: toNs(f.waitPs.delivery),
    preemptedWait: toNs(f.waitPs.preemptedWait),
    handler: toNs(f.waitPs.handler),
  };
  // A shootdown's exits: its IPI hypercall, the kicks that let KVM inject its interrupts, AVIC's
  // incomplete-IPI exits for targets that were not running, the initiators' PAUSE exits while
  // they wait, and with shadow paging the INVLPG exits of the flushes themselves (the
  // initiator's and every target's).
  const sdExits =
    (m.exits.vmmcall ?? 0) +
    m.scheduler.kicks.interrupt +
    (m.exits['avic-incomplete-ipi'] ?? 0) +
    (m.exits.pause ?? 0) +
    f.flushExits;
  m.shootdowns.exitsPerShootdown =
    latencies.length > 0 ? Math.round((sdExits / latencies.length) * 100) / 100 : 0;
  m.work.opsPerSecond = perSecond(m.work.ops);
  m.work.byVm = [...f.workByVm.entries()].map(([vm, ops]) => ({ vm, ops, opsPerSecond: perSecond(ops) }));
  m.scheduler.vcpus.sort((a, b) => a.vm.localeCompare(b.vm) || a.vcpu - b.vcpu);
  m.scheduler.hostTasks.sort((a, b) => a.core - b.core || a.name.localeCompare(b.name));
  m.costNs.stuffing = Math.round((m.rap.stuffingCalls * timing.rapStuff) / 32 / NS);
  m.costNs.mispredictions = Math.round((m.rap.mispredicted * timing.retMispredict) / NS);
  m.costNs.flushIpiHandlers = Math.round((f.ipis * timing.flushIpiHandler) / NS);
  m.costNs.exits = Math.round(f.exitPs / NS);
  m.exits = Object.fromEntries(Object.entries(m.exits).sort(([a], [b]) => a.localeCompare(b)));
  return m;
}

/** Power-of-two latency buckets from 1 µs: [0, 1µs), [1, 2µs), [2, 4µs), … up to the maximum. */
function histogram(ns: readonly number[]): { fromNs: number; toNs: number; count: number }[] {
  if (ns.length === 0) return [];
  const max = ns.reduce((a, b) => Math.max(a, b), 0);
  const out = [{ fromNs: 0, toNs: 1000, count: 0 }];
  while (out[out.length - 1]!.toNs <= max) {
    const from = out[out.length - 1]!.toNs;
    out.push({ fromNs: from, toNs: from * 2, count: 0 });
  }
  for (const x of ns) out.find((b) => x < b.toNs)!.count++;
  return out;
}
