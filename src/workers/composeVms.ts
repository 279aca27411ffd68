import type { HostedActor } from '../actors/hostedActor.js';
import { createMachineActor } from '../actors/machineActor.js';
import type { Time } from '../actors/time.js';
import { hostMachine } from '../host/hostMachine.js';
import { HostScheduler, type HostSchedulerParams } from '../host/hostScheduler.js';
import { HostTaskThread } from '../host/hostTask.js';
import { type EffectiveCpuid, type KvmStats, KvmVcpu } from '../host/kvmVcpu.js';
import type { MigrationDomain } from '../host/migrationDomain.js';
import { L1Hypervisor, NestedKvm } from '../host/nestedSvm.js';
import { policyByName } from '../host/policies/index.js';
import { encodeContext, KERNEL_PROCESS } from '../hw/context.js';
import type { CoreHw } from '../hw/core.js';
import type { CpuSoftware, FlushRequest, FlushSkip, GuestFlushView } from '../hw/cpuSoftware.js';
import type { NestedInterrupt } from '../hw/exit.js';
import { LinuxOs } from '../os/linuxOs.js';
import type { WorkloadParams } from '../os/workload.js';
import type { Scenario } from '../scenario/schema.js';
import { GuestCpu } from '../vcpu/guestCpu.js';
import type { Route } from '../vcpu/route.js';
import { vcpuMachine } from '../vcpu/vcpuMachine.js';
import {
  buildCore,
  coreStats,
  l1VcpuOf,
  pcpuId,
  type Topology,
  type VcpuPlacement,
  vcpuId,
} from './compose.js';
import { vcpuKey } from './migrationPlan.js';

type Vm = Scenario['vms'][number];

/** A VM with its global index: L1 VMs in file order, then each L1's L2 VMs. */
export interface VmInfo {
  index: number;
  vm: Vm;
  level: 1 | 2;
  /** For an L2: the index of the L1 that runs it. */
  parent?: number;
}

/** Every VM of the scenario, L1s first; the index is the VM field of every guest context. */
export function vmList(s: Scenario): VmInfo[] {
  const out: VmInfo[] = s.vms.map((vm, index) => ({ index, vm, level: 1 }));
  s.vms.forEach((vm, parent) => {
    for (const l2 of vm.nested?.vms ?? []) out.push({ index: out.length, vm: l2, level: 2, parent });
  });
  return out;
}

/**
 * The guest's effective CPUID (docs/domain.md §3): what the scenario asks for (userspace's
 * KVM_SET_CPUID2), limited to what the policy lets the hypervisor advertise and what its own
 * CPU has — for an L2, what its L1 was given and L1's policy advertises. The guest believes in
 * RapSize×8 entries with ERAPS (RapSize defaults to the hardware's), 32 without.
 */
export function guestCpuid(s: Scenario, vm: number): EffectiveCpuid {
  const info = vmList(s)[vm]!;
  const v = info.vm;
  const parent = info.parent === undefined ? undefined : guestCpuid(s, info.parent);
  const hostHasEraps = parent ? parent.eraps : s.hardware.spec !== 'legacy';
  const policy = policyByName(parent ? s.vms[info.parent!]!.nested!.policy : s.host.policy);
  const eraps = v.cpuid.eraps && hostHasEraps && policy.advertise({ npt: s.host.npt, hostHasEraps }).value;
  const rapSize = v.cpuid.rapSize ?? Math.max(1, Math.floor(s.hardware.rapEntries / 8));
  return { eraps, rapEntries: eraps ? rapSize * 8 : 32, pcid: v.cpuid.pcid, invpcid: v.cpuid.invpcid };
}

function guestWorkload(vm: Vm): WorkloadParams {
  const g = vm.guest;
  return {
    processes: g.processes,
    stuffing: g.stuffing,
    contextSwitch: g.contextSwitch,
    globalFlush: g.globalFlush,
    shootdown: g.shootdown,
    localFlush: g.localFlush,
    emulatedMovCr3: g.emulatedMovCr3,
    hlt: g.hlt,
    callDepth: g.callDepth,
    workingSetPages: g.workingSetPages,
  };
}

/**
 * The actors of a core that runs vCPUs: the pCPU, hosting the host scheduler and KVM's run loop
 * for every vCPU placed on it (host side), and one actor per vCPU, hosting its guest OS (guest
 * side; an L1 vCPU that runs an L2 brings the L2's actor too). They share the core's hardware
 * — a RAP and a TLB are physical — which is why they always live in the same partition.
 */
export function buildVmCoreActors(
  s: Scenario,
  topo: Topology,
  c: number,
  all: readonly VcpuPlacement[],
  until: Time,
  domains: ReadonlyMap<number, MigrationDomain>,
): [number, HostedActor][] {
  const pcpuIndex = topo.coreActor[c]!;
  const core = buildCore(s, topo, c);
  const vms = vmList(s);
  const domainIndex = topo.migration.activeDomainOfCore[c]!;
  const domain = domains.get(domainIndex);
  const route = routeFrom(topo, all, domains, domainIndex);
  const here = all.filter((p) => p.core === c && p.level === 1);
  // Each vCPU's guest software, for its host to ask whether a shootdown leaves it out; filled in
  // when the vCPU actor builds its OS (the two actors are built in either order).
  const guests = new Map(here.map((p) => [p, new GuestLink()]));
  const actors: [number, HostedActor][] = [];
  const kvms: HostSchedulerParams['threads'] = [];
  const host = createMachineActor(
    pcpuId(c),
    hostMachine,
    (port) => {
      for (const place of here) {
        const l2s = l2Of(s, topo, all, place);
        const vIndex = actorIndex(topo, vcpuId(place.vm, place.vcpu));
        const kvm = new KvmVcpu({
          port,
          core,
          policy: policyByName(s.host.policy),
          npt: s.host.npt,
          autoIbrs: s.hardware.autoIbrs,
          hostHasEraps: s.hardware.spec !== 'legacy',
          cpuid: guestCpuid(s, place.vm),
          vm: place.vm,
          vcpu: place.vcpu,
          level: 1,
          vcpuActor: vIndex,
          ...(l2s.length > 0
            ? { nested: l2s.map((l2) => ({ l2Actor: l2.index, l2Vm: l2.place.vm, l2Vcpu: l2.place.vcpu })) }
            : {}),
        });
        const vm = vms[place.vm]!.vm;
        const migratable = topo.migration.migratable.has(vcpuKey(place.vm, place.vcpu));
        kvms.push({
          kvm,
          actor: vIndex,
          pvTlbFlush: vm.pvTlbFlush,
          vmName: vm.name,
          migratable,
          nice: vm.nice,
          guest: guests.get(place)!,
        });
      }
      // host.tasks: a thread of each task that lists this core (or lists none: every vCPU core).
      const tasks = s.host.tasks
        .filter((t) => t.cores === undefined || t.cores.includes(c))
        .map((t, k) => new HostTaskThread(t, core, k));
      const sched = new HostScheduler({
        port,
        core,
        threads: kvms,
        tasks,
        slice: topo.timing.schedSlice,
        tick: s.host.scheduler.tick,
        haltPoll: topo.timing.haltPoll,
        migrationCost: s.host.scheduler.migrationCost,
        yieldForfeit: s.host.scheduler.yieldForfeit,
        pickBuddy: s.host.scheduler.pickBuddy,
        delayDequeue: s.host.scheduler.delayDequeue,
        ibpbOnVcpuSwitch: s.host.ibpbOnVcpuSwitch,
        until,
      });
      domain?.register({ core: c, actor: pcpuIndex, hw: core, sched });
      const spinPeers = spinPeersOf(topo, all, c, core.timing.pleWindow > 0);
      return { port, sched, avic: s.host.avic, route, domain, spinPeers };
    },
    (a) => {
      const ctx = a.getSnapshot().context;
      ctx.sched.finish(until);
      return {
        core: coreStats(core),
        kvm: sumKvmStats(kvms.map((k) => k.kvm.stats)),
        sched: ctx.sched.stats,
      };
    },
  );
  actors.push([pcpuIndex, host]);
  for (const place of here) {
    const info = vms[place.vm]!;
    // L1's KVM asks an L2 vCPU's guest whether a flush IPI for it would have been sent at all.
    const l2s = l2Of(s, topo, all, place).map((r) => ({ ...r, link: new GuestLink() }));
    actors.push([
      actorIndex(topo, vcpuId(place.vm, place.vcpu)),
      guestActor(s, topo, core, info, place, all, pcpuIndex, until, l2s, domain, route, guests.get(place)),
    ]);
    for (const l2 of l2s)
      actors.push([
        l2.index,
        guestActor(s, topo, core, l2.info, l2.place, all, pcpuIndex, until, [], undefined, route, l2.link),
      ]);
  }
  return actors;
}

/**
 * For directed yield (PAUSE-loop exiting on): by VM, the pCPUs outside core `c`'s migration
 * domain (outside `c` when it has none) that may run a vCPU of that VM — the homes of its L1
 * vCPUs, widened to their domains — for each VM whose vCPUs may run here.
 */
function spinPeersOf(
  topo: Topology,
  all: readonly VcpuPlacement[],
  c: number,
  ple: boolean,
): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (!ple) return out;
  const dom = topo.migration.activeDomainOfCore;
  const reach = (k: number) => (dom[k]! >= 0 ? dom.flatMap((d, j) => (d === dom[k] ? [j] : [])) : [k]);
  const mine = new Set(reach(c));
  const l1 = all.filter((p) => p.level === 1);
  for (const vm of new Set(l1.filter((p) => mine.has(p.core)).map((p) => p.vm))) {
    const cores = new Set(l1.filter((p) => p.vm === vm).flatMap((p) => reach(p.core)));
    const peers = [...cores].filter((k) => !mine.has(k)).sort((a, b) => a - b);
    if (peers.length > 0)
      out.set(
        vm,
        peers.map((k) => topo.coreActor[k]!),
      );
  }
  return out;
}

/** An L2 vCPU, where it runs, and its actor. */
interface L2Run {
  info: VmInfo;
  place: VcpuPlacement;
  index: number;
}

/**
 * The L2 vCPUs an L1 vCPU runs: of each of its L2 VMs, the vCPU placed on it (`l1VcpuOf`: the
 * L2's `pin`, else the vCPU of the same index). checkTopology allows at most one per L2 VM.
 */
function l2Of(s: Scenario, topo: Topology, all: readonly VcpuPlacement[], place: VcpuPlacement): L2Run[] {
  return vmList(s)
    .filter((v) => v.parent === place.vm)
    .flatMap((info) => {
      const vcpu = Array.from({ length: info.vm.vcpus }, (_, i) => i).find(
        (i) => l1VcpuOf(info.vm, i) === place.vcpu,
      );
      if (vcpu === undefined) return [];
      const l2Place = all.find((p) => p.vm === info.index && p.vcpu === vcpu)!;
      return [{ info, place: l2Place, index: actorIndex(topo, vcpuId(l2Place.vm, l2Place.vcpu)) }];
    });
}

/** L2 vCPU actor → the actor of the L1 vCPU that runs it (`l1VcpuOf`). */
function l1ActorOfL2(s: Scenario, topo: Topology): (l2Actor: number) => number {
  const m = new Map<number, number>();
  for (const info of vmList(s)) {
    if (info.parent === undefined) continue;
    for (let v = 0; v < info.vm.vcpus; v++)
      m.set(
        actorIndex(topo, vcpuId(info.index, v)),
        actorIndex(topo, vcpuId(info.parent, l1VcpuOf(info.vm, v))),
      );
  }
  return (l2Actor) => {
    const l1 = m.get(l2Actor);
    if (l1 === undefined) throw new Error(`actor ${l2Actor} is not an L2 vCPU`);
    return l1;
  };
}

const indexCache = new WeakMap<Topology, Map<string, number>>();

/** Actor index of an id, through a per-topology map (a scan per vCPU is quadratic at 192 vCPUs). */
function actorIndex(topo: Topology, id: string): number {
  let m = indexCache.get(topo);
  if (!m) {
    m = new Map(topo.ids.map((x, i) => [x, i]));
    indexCache.set(topo, m);
  }
  return m.get(id) ?? -1;
}

/**
 * How a sender in migration domain `from` (-1: none) reaches a vCPU: a vCPU that never moves at
 * its pCPU; one that moves inside the sender's own domain at the pCPU that runs it now; one
 * that moves inside another domain through its own actor (see route.ts).
 */
function routeFrom(
  topo: Topology,
  all: readonly VcpuPlacement[],
  domains: ReadonlyMap<number, MigrationDomain>,
  from: number,
): (vcpuActor: number) => Route {
  const hostOf = hostOfActor(topo, all);
  const moving = new Map<number, number>();
  for (const p of all) {
    if (topo.migration.migratable.has(vcpuKey(p.vm, p.vcpu)))
      moving.set(actorIndex(topo, vcpuId(p.vm, p.vcpu)), topo.migration.activeDomainOfCore[p.core]!);
  }
  const own = domains.get(from);
  return (target) => {
    const d = moving.get(target);
    if (d === undefined) return { to: hostOf(target), relay: false };
    if (d === from && own) return { to: own.hostOf(target), relay: false };
    return { to: target, relay: true };
  };
}

/** vCPU actor index → the pCPU actor that runs it. */
function hostOfActor(topo: Topology, all: readonly VcpuPlacement[]): (actor: number) => number {
  const m = new Map<number, number>();
  for (const p of all) m.set(actorIndex(topo, vcpuId(p.vm, p.vcpu)), topo.coreActor[p.core]!);
  return (actor) => {
    const h = m.get(actor);
    if (h === undefined) throw new Error(`actor ${actor} is not a vCPU`);
    return h;
  };
}

/** KVM statistics of all vCPUs of one pCPU, summed (the report sums pCPUs the same way). */
function sumKvmStats(all: KvmStats[]): KvmStats {
  const out: KvmStats = { exits: {}, worldSwitches: 0, clearRapVmruns: 0, timeInExitsPs: 0 };
  for (const k of all) {
    for (const [r, n] of Object.entries(k.exits)) out.exits[r] = (out.exits[r] ?? 0) + n;
    out.worldSwitches += k.worldSwitches;
    out.clearRapVmruns += k.clearRapVmruns;
    out.timeInExitsPs += k.timeInExitsPs;
  }
  return out;
}

/** A host's view of one vCPU's guest software ({@link GuestFlushView}), wired after both exist. */
class GuestLink implements GuestFlushView {
  sw: CpuSoftware | undefined;
  flushSkip(req: FlushRequest): FlushSkip | undefined {
    if (!this.sw) throw new Error('a vCPU thread asked its guest before the vCPU actor was built');
    return this.sw.flushSkip(req);
  }
  deferL2Flush(forL2: NestedInterrupt, now: Time): number | undefined {
    return this.sw?.deferL2Flush?.(forL2, now);
  }
  l2FlushSkipped(forL2: NestedInterrupt): boolean {
    return this.sw?.l2FlushSkipped?.(forL2) ?? false;
  }
}

/**
 * The vCPU actor of a guest: its OS on a GuestCpu whose intercepts are its hypervisor's (L0's
 * for an L1, the L1's for an L2). An L1 vCPU that runs an L2 hosts L1's KVM beside L1's OS.
 */
function guestActor(
  s: Scenario,
  topo: Topology,
  core: CoreHw,
  info: VmInfo,
  place: VcpuPlacement,
  all: readonly VcpuPlacement[],
  pcpuIndex: number,
  until: Time,
  runs: readonly (L2Run & { link: GuestLink })[],
  domain: MigrationDomain | undefined,
  route: (vcpuActor: number) => Route,
  link?: GuestLink,
): HostedActor {
  const cpuid = guestCpuid(s, info.index);
  const intercepts = KvmVcpu.intercepts(s.host.npt, cpuid);
  const vmVcpus = all.filter((v) => v.vm === info.index).map((v) => actorIndex(topo, vcpuId(v.vm, v.vcpu)));
  const identity = { world: 'guest' as const, level: info.level, vm: info.index, view: place.vcpu };
  const kernelCtx = encodeContext({ ...identity, process: KERNEL_PROCESS });
  const vmIndexByName = new Map(vmList(s).map((v) => [v.vm.name, v.index]));
  const script = info.vm.guest.script[String(place.vcpu)] ?? [];
  const coreOfVcpu = new Map(all.map((v) => [actorIndex(topo, vcpuId(v.vm, v.vcpu)), v.core]));
  const self = actorIndex(topo, vcpuId(place.vm, place.vcpu));
  const moves = domain !== undefined && topo.migration.migratable.has(vcpuKey(place.vm, place.vcpu));
  return createMachineActor(
    vcpuId(place.vm, place.vcpu),
    vcpuMachine,
    (port) => {
      const os = new LinuxOs({
        cpu: new GuestCpu(core, identity, intercepts),
        port,
        cpuid,
        workload: guestWorkload(info.vm),
        processes: Array.from({ length: info.vm.guest.processes }, (_, p) => p),
        cpumask: () => vmVcpus,
        socketOf: (a) => topo.socketOfCore[coreOfVcpu.get(a) ?? place.core]!,
        script,
        actorOfCore: (k) => vmVcpus[k] ?? vmVcpus[0]!,
        until,
        l2Index: (name) => vmIndexByName.get(name) ?? -1,
      });
      let sw: CpuSoftware = os;
      if (runs.length > 0) {
        const slots = runs.map((r) => ({
          index: r.info.index,
          actor: r.index,
          guest: r.link,
          pvTlbFlush: r.info.vm.pvTlbFlush,
          kernelCtx: encodeContext({
            world: 'guest',
            level: r.info.level,
            vm: r.info.index,
            view: r.place.vcpu,
            process: KERNEL_PROCESS,
          }),
          kvm: new NestedKvm(core, {
            npt: s.host.npt,
            policy: policyByName(info.vm.nested!.policy),
            port,
            l1HasEraps: cpuid.eraps,
            l2Cpuid: guestCpuid(s, r.info.index),
          }),
        }));
        const autoEnter = !script.some((op) => op.op === 'vmrun');
        sw = new L1Hypervisor(
          os,
          slots,
          kernelCtx,
          autoEnter,
          topo.timing.schedSlice,
          s.host.scheduler.tick,
          {
            l1ActorOf: l1ActorOfL2(s, topo),
            self,
            port,
            perTarget: topo.timing.ipiSendPerTarget,
          },
        );
      }
      if (link) link.sw = sw;
      const peers = all.map((v) => actorIndex(topo, vcpuId(v.vm, v.vcpu)));
      return {
        port,
        os: sw,
        host: pcpuIndex,
        peers,
        kernelCtx,
        avic: s.host.avic && info.level === 1,
        route,
        ...(moves
          ? { migration: { hostNow: () => domain.hostOf(self), coreOf: (a: number) => domain.coreOf(a) } }
          : {}),
        avicDelay: Math.max(0, topo.timing.guestIpiAvic - topo.timing.ipiSameSocket),
        hypervFlush: info.vm.hypervTlbFlush && info.level === 1,
      };
    },
    (a) => ({ os: a.getSnapshot().context.os.stats(), vm: info.vm.name, vcpu: place.vcpu }),
  );
}
