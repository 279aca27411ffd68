import type { HostedActor } from '../actors/hostedActor.js';
import { createMachineActor } from '../actors/machineActor.js';
import { Stream } from '../actors/prng.js';
import type { Time } from '../actors/time.js';
import { kvmMachine } from '../host/kvmMachine.js';
import { type EffectiveCpuid, KvmVcpu } from '../host/kvmVcpu.js';
import { policyByName } from '../host/policies/index.js';
import { encodeContext, KERNEL_PROCESS } from '../hw/context.js';
import { CoreHw } from '../hw/core.js';
import { LinuxOs } from '../os/linuxOs.js';
import type { WorkloadParams } from '../os/workload.js';
import type { Scenario } from '../scenario/schema.js';
import { GuestCpu } from '../vcpu/guestCpu.js';
import { vcpuMachine } from '../vcpu/vcpuMachine.js';
import { coreStats, pcpuId, type Topology, type VcpuPlacement, vcpuId } from './compose.js';

/**
 * The guest's effective CPUID (docs/domain.md §3): what the scenario asks for (userspace's
 * KVM_SET_CPUID2), limited to what the policy lets KVM advertise and what the hardware has.
 * The guest believes in RapSize×8 entries with ERAPS (RapSize defaults to the hardware's), 32
 * without.
 */
export function guestCpuid(s: Scenario, vm: number): EffectiveCpuid {
  const v = s.vms[vm]!;
  const hostHasEraps = s.hardware.spec !== 'legacy';
  const policy = policyByName(s.host.policy);
  const eraps = v.cpuid.eraps && hostHasEraps && policy.advertise({ npt: s.host.npt, hostHasEraps }).value;
  const rapSize = v.cpuid.rapSize ?? Math.max(1, Math.floor(s.hardware.rapEntries / 8));
  return { eraps, rapEntries: eraps ? rapSize * 8 : 32, pcid: v.cpuid.pcid, invpcid: v.cpuid.invpcid };
}

function guestWorkload(s: Scenario, vm: number): WorkloadParams {
  const g = s.vms[vm]!.guest;
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
  const cpuid = guestCpuid(s, place.vm);
  const intercepts = KvmVcpu.intercepts(s.host.npt, cpuid);
  const vm = s.vms[place.vm]!;
  const vmVcpus = all.filter((v) => v.vm === place.vm).map((v) => topo.ids.indexOf(vcpuId(v.vm, v.vcpu)));
  const identity = { world: 'guest' as const, level: 1, vm: place.vm, view: place.vcpu };
  const kernelCtx = encodeContext({ ...identity, process: KERNEL_PROCESS });
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
      });
      return { port, kvm, vcpu: vIndex };
    },
    () => ({ core: coreStats(core), kvm: kvm!.stats }),
  );
  const guest = createMachineActor(
    vcpuId(place.vm, place.vcpu),
    vcpuMachine,
    (port) => {
      const os = new LinuxOs({
        cpu: new GuestCpu(core, identity, intercepts),
        port,
        cpuid,
        workload: guestWorkload(s, place.vm),
        processes: Array.from({ length: vm.guest.processes }, (_, p) => p),
        cpumask: () => vmVcpus,
        socketOf: () => topo.socketOfCore[c]!,
        script: vm.guest.script[String(place.vcpu)] ?? [],
        actorOfCore: (k) => vmVcpus[k] ?? vmVcpus[0]!,
        until,
      });
      return {
        port,
        os,
        host: pcpuIndex,
        peers: all.map((v) => topo.ids.indexOf(vcpuId(v.vm, v.vcpu))),
        kernelCtx,
      };
    },
    (a) => ({ os: a.getSnapshot().context.os.stats() }),
  );
  return [
    [pcpuIndex, host],
    [vIndex, guest],
  ];
}
