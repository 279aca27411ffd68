import type { Scenario } from '../scenario/schema.js';
import type { VcpuPlacement } from './compose.js';

/**
 * Which vCPUs may migrate and between which cores (docs/domain.md §3; Linux's scheduling
 * domains). A domain is the cores of one last-level cache or one socket
 * (`host.scheduler.migration`). It is *active* when a queue can ever form on one of its cores
 * behind a thread that may leave it — a core that starts with two threads or more, one of them
 * migratable —, it has another core to go to, and one of its vCPUs can halt (only a pCPU whose
 * vCPUs all sleep becomes idle and pulls; vCPUs that never block keep every pCPU busy). Only
 * active domains constrain partitioning and routing: their cores share one partition, whatever
 * the worker count.
 */
export interface MigrationPlan {
  /** Cores per domain. */
  size: number;
  /** Core → index of its active domain, or -1. */
  activeDomainOfCore: number[];
  /** `vm:vcpu` of every vCPU that may migrate. */
  migratable: ReadonlySet<string>;
}

/** Key of a vCPU in `MigrationPlan.migratable`. */
export function vcpuKey(vm: number, vcpu: number): string {
  return `${vm}:${vcpu}`;
}

export function planMigration(s: Scenario, placement: readonly VcpuPlacement[]): MigrationPlan {
  const n = s.hardware.cores;
  const kind = s.host.scheduler.migration;
  const size = kind === 'socket' ? s.hardware.coresPerSocket : s.hardware.coresPerLlc;
  const none: MigrationPlan = { size, activeDomainOfCore: Array(n).fill(-1), migratable: new Set() };
  if (kind === 'off' || size < 2) return none;
  // An L1 vCPU that runs L2s stays put (L0's vmcb02 and L1's nested state are per pCPU here),
  // and so does a pinned one.
  const candidates = new Set(
    placement
      .filter((p) => {
        const vm = s.vms[p.vm];
        return p.level === 1 && vm && !vm.nested && vm.pin?.[p.vcpu] === undefined;
      })
      .map((p) => vcpuKey(p.vm, p.vcpu)),
  );
  const halts = (vm: number): boolean => {
    const v = s.vms[vm];
    if (!v) return false;
    const guests = [v, ...(v.nested?.vms ?? [])];
    return guests.some(
      (g) =>
        g.guest.hlt.every > 0 ||
        Object.values(g.guest.script).some((ops) => ops.some((op) => op.op === 'hlt')),
    );
  };
  const threads = Array.from({ length: n }, () => ({ all: 0, migratable: 0, halts: false }));
  for (const p of placement) {
    if (p.level !== 1) continue;
    threads[p.core]!.all++;
    if (halts(p.vm)) threads[p.core]!.halts = true;
    if (candidates.has(vcpuKey(p.vm, p.vcpu))) threads[p.core]!.migratable++;
  }
  const activeDomainOfCore = Array(n).fill(-1);
  const migratable = new Set<string>();
  for (let d = 0; d * size < n; d++) {
    const cores = Array.from({ length: Math.min(size, n - d * size) }, (_, k) => d * size + k);
    const active =
      cores.length > 1 &&
      cores.some((c) => threads[c]!.all >= 2 && threads[c]!.migratable > 0) &&
      cores.some((c) => threads[c]!.halts);
    if (!active) continue;
    for (const c of cores) activeDomainOfCore[c] = d;
    for (const p of placement)
      if (cores.includes(p.core) && candidates.has(vcpuKey(p.vm, p.vcpu)))
        migratable.add(vcpuKey(p.vm, p.vcpu));
  }
  return { size, activeDomainOfCore, migratable };
}

/**
 * Partitions along cores, each active migration domain kept whole: contiguous units (a domain,
 * or a single core) are dealt out in core order as balanced blocks, the way plain cores always
 * were, and partitions left empty are dropped.
 */
export function partitionCores(n: number, workers: number, activeDomainOfCore: readonly number[]): number[] {
  const unitStart: number[] = [];
  for (let c = 0; c < n; c++) {
    const d = activeDomainOfCore[c]!;
    if (c === 0 || d < 0 || d !== activeDomainOfCore[c - 1]) unitStart.push(c);
  }
  const p = Math.max(1, Math.min(workers, unitStart.length));
  const raw = Array.from({ length: n }, () => 0);
  unitStart.forEach((start, u) => {
    const end = unitStart[u + 1] ?? n;
    for (let c = start; c < end; c++) raw[c] = Math.floor((start * p) / n);
  });
  const dense = new Map<number, number>();
  return raw.map((x) => {
    if (!dense.has(x)) dense.set(x, dense.size);
    return dense.get(x)!;
  });
}
