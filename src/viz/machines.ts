import type { AnyStateMachine } from 'xstate';
import { kvmMachine } from '../host/kvmMachine.js';
import { pcpuMachine } from '../hw/pcpuMachine.js';
import { vcpuMachine } from '../vcpu/vcpuMachine.js';

/** A machine kind the charts and the viewer know. */
export interface MachineEntry {
  /** The kind, as actor ids start (`pcpu:0003` is a `pcpu`); by convention the machine's id. */
  kind: string;
  machine: AnyStateMachine;
  description: string;
}

/**
 * Every machine kind of the model, in the order charts list them. A new machine (vCPU, KVM run
 * loop, …) is one more line here: `rapsim charts`, the README charts, trace export and the viewer
 * pick it up. Actors are matched to their kind by the prefix of their id (`kind:…`).
 */
export const MACHINES: MachineEntry[] = [
  {
    kind: 'pcpu',
    machine: pcpuMachine,
    description:
      'A physical core: runs the software on it step by step, handles interrupts and flush IPIs, initiates TLB shootdowns and waits for their acknowledgements, meets sync points, sleeps in HLT.',
  },
  {
    kind: 'kvm',
    machine: kvmMachine,
    description:
      "A core running a vCPU: KVM's run loop — service requests and VMRUN, wait in guest mode for the #VMEXIT, handle it through the exit table, block after HLT. (Its actor id is the core's, pcpu:NNNN.)",
  },
  {
    kind: 'vcpu',
    machine: vcpuMachine,
    description:
      'The guest side of a vCPU: waits for VMRUN, runs the guest OS in guest mode, leaves by one #VMEXIT at a time when its instructions are intercepted.',
  },
];

/** The machine kind of an actor id (`pcpu:0003` → `pcpu`), or undefined for an unknown kind. */
export function machineOf(actorId: string): MachineEntry | undefined {
  const kind = actorId.split(':')[0];
  return MACHINES.find((m) => m.kind === kind);
}
