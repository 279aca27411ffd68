import type { HostedActor } from '../actors/hostedActor.js';
import type { ActorIndex } from '../actors/types.js';

/** One RAP entry as the trace keeps it: who pushed it, when, the address, whether it is stuffing. */
export interface RapEntryView {
  addr: number;
  ctx: number;
  pushedAt: number;
  stuff: boolean;
}

/**
 * A change of one RAP stack since the previous probe of the same actor: keep the `keep` oldest
 * entries, then push `add` (flattened `[ctx, pushedAt, addr, stuff 0|1]` per entry). The RAP is
 * a stack, so between two events most of it is a common prefix and a delta stays small.
 */
export interface RapDelta {
  keep: number;
  add: number[];
}

/**
 * What a probe records for a core: deltas of its host stack and, on ERAPS parts, its guest stack.
 * `core` is the actor index of the core, when the event went to another actor on it (a vCPU).
 */
export interface RapProbe {
  host?: RapDelta;
  guest?: RapDelta;
  core?: ActorIndex;
}

/** Width of one entry in {@link RapDelta.add}. */
export const RAP_ENTRY_WIDTH = 4;

interface WithRapContents {
  core?: { rapContents?: { host: RapEntryView[]; guest: RapEntryView[] | null } };
}

/**
 * A probe for recorded traces (issue 6): after each kept event, the RAP contents of the core the
 * event's actor runs on (the actor itself for a core; for a vCPU, the core whose statistics hold
 * the RAP now, found by `coreOf`) as a delta against what the previous probe of that core saw
 * (undefined when nothing changed). Reads statistics; never steers the model.
 */
export function createRapProbe(
  actors: ReadonlyMap<ActorIndex, HostedActor>,
  coreOf: (index: ActorIndex) => ActorIndex,
): (index: ActorIndex, actor: HostedActor) => RapProbe | undefined {
  const last = new Map<ActorIndex, { host: number[]; guest: number[] }>();
  return (index, actor) => {
    // Asked every time: a vCPU's core changes when its thread migrates.
    const core = coreOf(index);
    const holder = core === index ? actor : actors.get(core);
    const contents = (holder?.stats() as WithRapContents | undefined)?.core?.rapContents;
    if (!contents) return undefined;
    const prev = last.get(core) ?? { host: [], guest: [] };
    const host = flatten(contents.host);
    const guest = contents.guest ? flatten(contents.guest) : [];
    last.set(core, { host, guest });
    const out: RapProbe = core === index ? {} : { core };
    const h = delta(prev.host, host);
    if (h) out.host = h;
    const g = delta(prev.guest, guest);
    if (g) out.guest = g;
    return out.host || out.guest ? out : undefined;
  };
}

function flatten(entries: readonly RapEntryView[]): number[] {
  const a = new Array<number>(entries.length * RAP_ENTRY_WIDTH);
  entries.forEach((e, i) => {
    a[i * 4] = e.ctx;
    a[i * 4 + 1] = e.pushedAt;
    a[i * 4 + 2] = e.addr;
    a[i * 4 + 3] = e.stuff ? 1 : 0;
  });
  return a;
}

/** The change from one flattened RAP stack to the next (undefined: unchanged). */
export function delta(prev: readonly number[], next: readonly number[]): RapDelta | undefined {
  const n = Math.min(prev.length, next.length) / RAP_ENTRY_WIDTH;
  let keep = 0;
  outer: while (keep < n) {
    for (let k = 0; k < RAP_ENTRY_WIDTH; k++) {
      if (prev[keep * RAP_ENTRY_WIDTH + k] !== next[keep * RAP_ENTRY_WIDTH + k]) break outer;
    }
    keep++;
  }
  if (keep * RAP_ENTRY_WIDTH === prev.length && prev.length === next.length) return undefined;
  return { keep, add: next.slice(keep * RAP_ENTRY_WIDTH) };
}
