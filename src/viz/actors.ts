import { machineOf } from './machines.js';

/** How the trace and the viewer show an actor. */
export interface ActorInfo {
  index: number;
  id: string;
  /** Machine kind (`pcpu`, …): the prefix of the id. */
  kind: string;
  /** `host`, or `vm:<name>` for actors of a virtual machine. */
  group: string;
  /** A short readable name: `pCPU 3`, `vCPU vm0/1`. */
  label: string;
}

/** Actor kinds that belong to a VM: their ids read `<kind>:<vm name>:<number>`. */
const VM_KINDS = new Set(['vcpu', 'guest', 'l2vcpu']);

const LABELS: Record<string, string> = { pcpu: 'pCPU', vcpu: 'vCPU', kvm: 'KVM' };

/**
 * What an actor is, from its id alone (ids are fixed by the topology): `pcpu:0003` is pCPU 3 of
 * the host; `vcpu:vm0:0001` is vCPU 1 of VM `vm0`. Unknown kinds still get a group and a label.
 */
export function describeActor(index: number, id: string): ActorInfo {
  const parts = id.split(':');
  const kind = parts[0] ?? id;
  const inVm = VM_KINDS.has(kind) && parts.length >= 3;
  const group = inVm ? `vm:${parts[1]}` : 'host';
  const num = (s: string | undefined): string => (s && /^\d+$/.test(s) ? String(Number(s)) : (s ?? ''));
  const name = LABELS[kind] ?? machineOf(id)?.kind ?? kind;
  const rest = inVm ? `${parts[1]}/${num(parts[2])}` : parts.slice(1).map(num).join('/');
  return { index, id, kind, group, label: rest ? `${name} ${rest}` : name };
}

/** Groups in display order: the host first, then VMs by name. */
export function groupsOf(actors: readonly ActorInfo[]): { id: string; label: string }[] {
  const ids = [...new Set(actors.map((a) => a.group))].sort((a, b) =>
    a === 'host' ? -1 : b === 'host' ? 1 : a.localeCompare(b),
  );
  return ids.map((id) => ({ id, label: id === 'host' ? 'host' : `VM ${id.slice(3)}` }));
}
