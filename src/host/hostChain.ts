import type { Time } from '../actors/time.js';
import type { CoreHw } from '../hw/core.js';
import { ObsKind, type RapUseObs } from '../hw/observations.js';

/** What a host call chain needs to report the entries its RETs use. */
interface Observer {
  observe(kind: string, data: unknown): void;
}

/**
 * A host kernel call chain of `depth` frames on the host RAP (KVM's run loop under VMRUN, a
 * kernel thread inside schedule()): return addresses `base + i`, innermost last.
 */
export function pushHostChain(core: CoreHw, ctx: number, base: number, depth: number, now: Time): void {
  for (let i = 0; i < depth; i++) core.rapHost.push(base + i, ctx, core.candidateEpoch, now, false);
}

/**
 * The chain's RETs, innermost first: each uses whatever the host RAP holds, and an entry pushed
 * by another context (on legacy hardware a guest's; after a context switch another thread's) is
 * reported to the checkers, who judge it.
 */
export function returnHostChain(
  core: CoreHw,
  ctx: number,
  base: number,
  depth: number,
  port: Observer,
): void {
  const rap = core.rapHost;
  for (let i = depth - 1; i >= 0; i--) {
    const actual = base + i;
    const slot = rap.pop(actual);
    if (slot < 0 || rap.stuff[slot] === 1) continue;
    if (rap.ctx[slot] !== ctx) {
      const obs: RapUseObs = {
        pcpu: core.params.index,
        consumer: ctx,
        producer: rap.ctx[slot]!,
        pushedAt: rap.pushedAt[slot]!,
        predicted: rap.addr[slot] === actual,
      };
      port.observe(ObsKind.RAP_USE, obs);
    }
  }
}
