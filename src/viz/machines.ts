import type { AnyStateMachine } from 'xstate';
import { hostMachine } from '../host/hostMachine.js';
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
    kind: 'host',
    machine: hostMachine,
    description:
      "A core running vCPUs: the host scheduler and KVM's run loop — choose a vCPU thread (IBPB on a vCPU switch), record steal time, service requests and VMRUN, wait in guest mode while slices end and interrupts arrive (kick, or AVIC doorbell), handle the #VMEXIT through the exit table, preempt or block after HLT, idle. (Its actor id is the core's, pcpu:NNNN.)",
  },
  {
    kind: 'vcpu',
    machine: vcpuMachine,
    description:
      'The guest side of a vCPU: waits for VMRUN, runs the guest OS in guest mode, leaves by one #VMEXIT at a time when its instructions are intercepted, sends flush IPIs (hypercall or AVIC) and spins for their acknowledgements, takes interrupts, and is kicked out when the host preempts it.',
  },
];

/** The machine kind of an actor id (`pcpu:0003` → `pcpu`), or undefined for an unknown kind. */
export function machineOf(actorId: string): MachineEntry | undefined {
  const kind = actorId.split(':')[0];
  return MACHINES.find((m) => m.kind === kind);
}
