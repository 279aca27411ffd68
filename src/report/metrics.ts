import type { ActorSummary } from '../actors/partition.js';
import { NS, toNs } from '../actors/time.js';
import type { HostSchedStats } from '../host/hostScheduler.js';
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

/** Folds per-actor statistics into the report's metrics. */
export function collectMetrics(
  actors: readonly ActorSummary[],
  timing: Timing,
  simulatedPs: number,
): Metrics {
  const m: Metrics = {
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
  const latencies: number[] = [];
  const groups = new Map<string, { targets: number; crossSocket: boolean; samples: number[] }>();
  let ipis = 0;
  let flushExits = 0;
  let exitPs = 0;
  const waitPs = { delivery: 0, preemptedWait: 0, handler: 0 };
  const workByVm = new Map<string, number>();
  const shootdownsByVm = new Map<string, number[]>();
  const perSecond = (n: number): number => (simulatedPs > 0 ? Math.round((n * 1e12) / simulatedPs) : 0);
  for (const a of actors) {
    const st = a.stats as {
      core?: CoreStats;
      os?: LinuxOsStats;
      kvm?: KvmStats;
      sched?: HostSchedStats;
      vm?: string;
    };
    if (st.sched) {
      m.scheduler.vcpuSwitches += st.sched.vcpuSwitches;
      m.scheduler.ibpbs += st.sched.ibpbs;
      m.scheduler.kicks.interrupt += st.sched.kicks.interrupt;
      m.scheduler.kicks.preempt += st.sched.kicks.preempt;
      for (const t of st.sched.tasks) {
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
      for (const t of st.sched.threads) {
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
      m.shootdowns.lazySkippedTargets += st.os.lazySkips;
      flushExits += st.os.shootdownFlushExits;
      m.work.ops += st.os.workOps;
      if (st.vm !== undefined) workByVm.set(st.vm, (workByVm.get(st.vm) ?? 0) + st.os.workOps);
      for (const sd of st.os.shootdownLatencies) {
        waitPs.delivery += sd.delivery;
        waitPs.preemptedWait += sd.preemptedWait;
        waitPs.handler += sd.handler;
        const ns = toNs(sd.latency);
        latencies.push(ns);
        if (st.vm !== undefined) {
          const own = shootdownsByVm.get(st.vm) ?? [];
          own.push(ns);
          shootdownsByVm.set(st.vm, own);
        }
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
  m.shootdowns.byVm = [...shootdownsByVm]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([vm, samples]) => ({ vm, count: samples.length, latencyNs: percentiles(samples) }));
  m.shootdowns.histogram = histogram(latencies);
  m.shootdowns.waitNs = {
    delivery: toNs(waitPs.delivery),
    preemptedWait: toNs(waitPs.preemptedWait),
    handler: toNs(waitPs.handler),
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
    flushExits;
  m.shootdowns.exitsPerShootdown =
    latencies.length > 0 ? Math.round((sdExits / latencies.length) * 100) / 100 : 0;
  m.work.opsPerSecond = perSecond(m.work.ops);
  m.work.byVm = [...workByVm.entries()].map(([vm, ops]) => ({ vm, ops, opsPerSecond: perSecond(ops) }));
  m.scheduler.vcpus.sort((a, b) => a.vm.localeCompare(b.vm) || a.vcpu - b.vcpu);
  m.scheduler.hostTasks.sort((a, b) => a.core - b.core || a.name.localeCompare(b.name));
  m.costNs.stuffing = Math.round((m.rap.stuffingCalls * timing.rapStuff) / 32 / NS);
  m.costNs.mispredictions = Math.round((m.rap.mispredicted * timing.retMispredict) / NS);
  m.costNs.flushIpiHandlers = Math.round((ipis * timing.flushIpiHandler) / NS);
  m.costNs.exits = Math.round(exitPs / NS);
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
