import type { HostedActor } from '../actors/hostedActor.js';
import { createMachineActor } from '../actors/machineActor.js';
import type { Time } from '../actors/time.js';
import { kvmMachine } from '../host/kvmMachine.js';
import { type EffectiveCpuid, KvmVcpu } from '../host/kvmVcpu.js';
import { L1Hypervisor, NestedKvm } from '../host/nestedSvm.js';
import { policyByName } from '../host/policies/index.js';
import { encodeContext, KERNEL_PROCESS } from '../hw/context.js';
import type { CoreHw } from '../hw/core.js';
import type { CpuSoftware } from '../hw/cpuSoftware.js';
import { LinuxOs } from '../os/linuxOs.js';
import type { WorkloadParams } from '../os/workload.js';
import type { Scenario } from '../scenario/schema.js';
import { GuestCpu } from '../vcpu/guestCpu.js';
import { vcpuMachine } from '../vcpu/vcpuMachine.js';
import { buildCore, coreStats, pcpuId, type Topology, type VcpuPlacement, vcpuId } from './compose.js';

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
 * The two actors of a core that runs a vCPU: the pCPU, hosting KVM's run loop for that vCPU
 * (host side), and the vCPU, hosting the guest OS (guest side). They share the core's hardware
 * — a RAP and a TLB are physical — which is why they always live in the same partition.
 */
export function buildVcpuActors(
  s: Scenario,
  topo: Topology,
  place: VcpuPlacement,
  all: readonly VcpuPlacement[],
  until: Time,
): [number, HostedActor][] {
  const c = place.core;
  const pcpuIndex = topo.coreActor[c]!;
  const vIndex = topo.ids.indexOf(vcpuId(place.vm, place.vcpu));
  const id = pcpuId(c);
  const core = buildCore(s, topo, c);
  const vms = vmList(s);
  const info = vms[place.vm]!;
  const cpuid = guestCpuid(s, place.vm);
  const l2Info = vms.find((v) => v.parent === place.vm && place.vcpu < v.vm.vcpus);
  const l2Place = l2Info ? all.find((p) => p.vm === l2Info.index && p.vcpu === place.vcpu) : undefined;
  const l2Index = l2Place ? topo.ids.indexOf(vcpuId(l2Place.vm, l2Place.vcpu)) : undefined;
  let kvm: KvmVcpu | undefined;
  const host = createMachineActor(
    id,
    kvmMachine,
    (port) => {
      kvm = new KvmVcpu({
        port,
        core,
        policy: policyByName(s.host.policy),
        npt: s.host.npt,
        autoIbrs: s.hardware.autoIbrs,
        hostHasEraps: s.hardware.spec !== 'legacy',
        cpuid,
        vm: place.vm,
        vcpu: place.vcpu,
        level: 1,
        vcpuActor: vIndex,
        ...(l2Place && l2Index !== undefined
          ? { nested: { l2Actor: l2Index, l2Vm: l2Place.vm, l2Vcpu: l2Place.vcpu } }
          : {}),
      });
      return { port, kvm, vcpu: vIndex };
    },
    () => ({ core: coreStats(core), kvm: kvm!.stats }),
  );
  const actors: [number, HostedActor][] = [[pcpuIndex, host]];
  actors.push([
    vIndex,
    guestActor(
      s,
      topo,
      core,
      info,
      place,
      all,
      pcpuIndex,
      until,
      l2Info && l2Place ? { l2: l2Info, place: l2Place } : undefined,
    ),
  ]);
  if (l2Info && l2Place && l2Index !== undefined) {
    actors.push([l2Index, guestActor(s, topo, core, l2Info, l2Place, all, pcpuIndex, until, undefined)]);
  }
  return actors;
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
  runs: { l2: VmInfo; place: VcpuPlacement } | undefined,
): HostedActor {
  const cpuid = guestCpuid(s, info.index);
  const intercepts = KvmVcpu.intercepts(s.host.npt, cpuid);
  const vmVcpus = all.filter((v) => v.vm === info.index).map((v) => topo.ids.indexOf(vcpuId(v.vm, v.vcpu)));
  const identity = { world: 'guest' as const, level: info.level, vm: info.index, view: place.vcpu };
  const kernelCtx = encodeContext({ ...identity, process: KERNEL_PROCESS });
  const vmIndexByName = new Map(vmList(s).map((v) => [v.vm.name, v.index]));
  const script = info.vm.guest.script[String(place.vcpu)] ?? [];
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
        socketOf: () => topo.socketOfCore[place.core]!,
        script,
        actorOfCore: (k) => vmVcpus[k] ?? vmVcpus[0]!,
        until,
        l2Index: (name) => vmIndexByName.get(name) ?? -1,
      });
      let sw: CpuSoftware = os;
      if (runs) {
        const l2Cpuid = guestCpuid(s, runs.l2.index);
        const nestedKvm = new NestedKvm(core, {
          npt: s.host.npt,
          policy: policyByName(info.vm.nested!.policy),
          port,
          l1HasEraps: cpuid.eraps,
          l2Cpuid,
        });
        const autoEnter = !script.some((op) => op.op === 'vmrun');
        sw = new L1Hypervisor(os, nestedKvm, runs.l2.index, kernelCtx, autoEnter);
      }
      const peers = all.map((v) => topo.ids.indexOf(vcpuId(v.vm, v.vcpu)));
      return { port, os: sw, host: pcpuIndex, peers, kernelCtx };
    },
    (a) => ({ os: a.getSnapshot().context.os.stats() }),
  );
}
