import type { Port } from '../../src/actors/hostedActor.js';
import { Stream } from '../../src/actors/prng.js';
import { type EffectiveCpuid, KvmVcpu } from '../../src/host/kvmVcpu.js';
import { policyByName } from '../../src/host/policies/index.js';
import { encodeContext } from '../../src/hw/context.js';
import { CoreHw, type Ratio } from '../../src/hw/core.js';
import type { GuestExit } from '../../src/hw/exit.js';
import type { Instruction } from '../../src/hw/instruction.js';
import type { SpecVariant } from '../../src/hw/spec.js';
import { resolveTiming } from '../../src/hw/timing.js';

/** Shared test fixtures for the KVM side: a core, a fake Port, a KvmVcpu, guest exits. */

export const timing = resolveTiming(3_000_000_000);

export function makeCore(spec: SpecVariant, microarchClears: Ratio = { num: 0, den: 1 }): CoreHw {
  return new CoreHw(
    { index: 0, socket: 0, spec, rapEntries: 64, microarchClears, ibpbClearsRap: true, timing },
    Stream.child(1, 'x'),
  );
}

export interface Recorded {
  kind: string;
  data: unknown;
}

export interface FakePort extends Port {
  observations: Recorded[];
  /** The time `now()` returns. */
  t: number;
  of<T>(kind: string): T[];
}

/** A Port that records observations and whose clock the test sets; every other method throws. */
export function fakePort(): FakePort {
  const no = (what: string) => () => {
    throw new Error(`fake port: ${what} not expected in this test`);
  };
  const port = {
    self: 0,
    id: 'pcpu:0',
    rng: Stream.child(1, 'port'),
    t: 0,
    observations: [] as Recorded[],
    now(): number {
      return port.t;
    },
    observe(kind: string, data: unknown): void {
      port.observations.push({ kind, data });
    },
    of<T>(kind: string): T[] {
      return port.observations.filter((o) => o.kind === kind).map((o) => o.data as T);
    },
    send: no('send'),
    schedule: no('schedule'),
    newId: no('newId'),
    indexOf: no('indexOf'),
    latencyTo: no('latencyTo'),
  };
  return port;
}

export const FULL_CPUID: EffectiveCpuid = { eraps: true, rapEntries: 64, pcid: true, invpcid: true };
export const NO_ERAPS_CPUID: EffectiveCpuid = { eraps: false, rapEntries: 32, pcid: true, invpcid: true };

export interface KvmFixture {
  kvm: KvmVcpu;
  core: CoreHw;
  port: FakePort;
}

export function makeKvm(
  o: {
    policy?: string;
    npt?: boolean;
    spec?: SpecVariant;
    cpuid?: EffectiveCpuid;
    autoIbrs?: boolean;
    microarchClears?: Ratio;
  } = {},
): KvmFixture {
  const spec = o.spec ?? 'eraps-amd';
  const core = makeCore(spec, o.microarchClears);
  const port = fakePort();
  const kvm = new KvmVcpu({
    port,
    core,
    policy: policyByName(o.policy ?? 'linux-7.0'),
    npt: o.npt ?? true,
    autoIbrs: o.autoIbrs ?? true,
    hostHasEraps: spec !== 'legacy',
    cpuid: o.cpuid ?? FULL_CPUID,
    vm: 0,
    vcpu: 0,
    level: 1,
    vcpuActor: 1,
  });
  return { kvm, core, port };
}

/** Encoded context of guest process `process` of VM 0, vCPU 0. */
export function guestCtx(process: number): number {
  return encodeContext({ world: 'guest', level: 1, vm: 0, view: 0, process });
}

export function exitFor(reason: GuestExit['reason'], insn?: Instruction, arg?: number): GuestExit {
  return {
    reason,
    ...(insn ? { insn } : {}),
    ...(arg !== undefined ? { arg } : {}),
    ctx: guestCtx(1),
    detail: 'test',
  };
}

/** A linux-7.0 vCPU of VM `vm` on `core`, with the full CPUID (migration and scheduler tests). */
export function kvmOn(core: CoreHw, port: Port, vm: number, vcpu: number, vcpuActor: number): KvmVcpu {
  return new KvmVcpu({
    port,
    core,
    policy: policyByName('linux-7.0'),
    npt: true,
    autoIbrs: true,
    hostHasEraps: true,
    cpuid: FULL_CPUID,
    vm,
    vcpu,
    level: 1,
    vcpuActor,
  });
}
