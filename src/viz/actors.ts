import { allStates, chartModel } from './chartModel.js';
import { MACHINES, machineOf } from './machines.js';
import { activeStateIds } from './stateIds.js';

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

/** Actor kinds that belong to a VM: their ids read `<kind>:<vm index>:<number>`. */
const VM_KINDS = new Set(['vcpu']);

const LABELS: Record<string, string> = { pcpu: 'pCPU', vcpu: 'vCPU', host: 'host' };

/**
 * What an actor is, from its id (ids are fixed by the topology): `pcpu:0003` is pCPU 3 of the
 * host; `vcpu:001:0002` is vCPU 2 of the VM with index 1 (named from `vmNames`, the scenario's VMs
 * with their L2s after them). Unknown kinds still get a group and a label. `kind` is the id's
 * prefix here; {@link inferKinds} corrects it from the states the actor was seen in.
 */
export function describeActor(index: number, id: string, vmNames: readonly string[] = []): ActorInfo {
  const parts = id.split(':');
  const kind = parts[0] ?? id;
  const num = (s: string | undefined): string => (s && /^\d+$/.test(s) ? String(Number(s)) : (s ?? ''));
  const name = LABELS[kind] ?? machineOf(id)?.kind ?? kind;
  if (VM_KINDS.has(kind) && parts.length >= 3) {
    const vm = /^\d+$/.test(parts[1]!) ? (vmNames[Number(parts[1])] ?? `vm${Number(parts[1])}`) : parts[1]!;
    return { index, id, kind, group: `vm:${vm}`, label: `${name} ${vm}/${num(parts[2])}` };
  }
  const rest = parts.slice(1).map(num).join('/');
  return { index, id, kind, group: 'host', label: rest ? `${name} ${rest}` : name };
}

/**
 * Which machine each actor runs, from the states it was seen in: a core that runs a vCPU is a
 * `host` machine under a `pcpu:` id. The machine named by the id's prefix wins when every state
 * fits it; otherwise the first registered machine that has every state; otherwise the prefix.
 */
export function inferKinds(actors: ActorInfo[], labels: ReadonlyMap<number, ReadonlySet<string>>): void {
  const states = MACHINES.map((m) => ({
    kind: m.kind,
    id: m.machine.id,
    ids: new Set(allStates(chartModel(m.kind, m.machine, m.description).root).map((s) => s.id)),
  }));
  const fits = (m: (typeof states)[number], seen: ReadonlySet<string>): boolean =>
    [...seen].every((l) => activeStateIds(m.id, l).every((x) => m.ids.has(x)));
  for (const a of actors) {
    const seen = labels.get(a.index);
    if (!seen || seen.size === 0) continue;
    const own = states.find((m) => m.kind === a.kind);
    if (own && fits(own, seen)) continue;
    const other = states.find((m) => fits(m, seen));
    if (other) a.kind = other.kind;
  }
}

/** Groups in display order: the host first, then VMs by name. */
export function groupsOf(actors: readonly ActorInfo[]): { id: string; label: string }[] {
  const ids = [...new Set(actors.map((a) => a.group))].sort((a, b) =>
    a === 'host' ? -1 : b === 'host' ? 1 : a.localeCompare(b),
  );
  return ids.map((id) => ({ id, label: id === 'host' ? 'host' : `VM ${id.slice(3)}` }));
}
