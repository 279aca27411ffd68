import { describe, expect, it } from 'vitest';
import type { Time } from '../../src/actors/time.js';
import { HostScheduler } from '../../src/host/hostScheduler.js';
import { MigrationDomain } from '../../src/host/migrationDomain.js';
import type { CoreHw } from '../../src/hw/core.js';
import { fakePort, kvmOn, makeCore } from './kvmHelpers.js';

/**
 * MigrationDomain (src/host/migrationDomain.ts): idle pCPUs pull the longest-waiting, cache-cold
 * thread of the busiest run queue; the thread's KVM state moves to the new pCPU and its ASID's
 * entries there are dropped (new_asid); a polling pCPU is not idle; a claimed pCPU is not chosen
 * twice; pinned threads never move.
 */

const US = 1_000_000;
const HALT_POLL = 200 * US;
const COST = 500 * US;

interface Cpu {
  hw: CoreHw;
  sched: HostScheduler;
  actor: number;
}

/** Core c with `threads` vCPU threads (actors 100·(c+1) + i); the last `pinned` of them pinned. */
function cpu(c: number, threads: number, pinned = 0): Cpu {
  const port = fakePort();
  const hw = makeCore('eraps-amd');
  (hw.params as { index: number }).index = c;
  const list = Array.from({ length: threads }, (_, i) => {
    const actor = 100 * (c + 1) + i;
    const kvm = kvmOn(hw, port, c, i, actor);
    return { kvm, actor, pvTlbFlush: true, vmName: `vm${c}`, migratable: i < threads - pinned };
  });
  const sched = new HostScheduler({
    port,
    core: hw,
    threads: list,
    slice: 2_800 * US,
    haltPoll: HALT_POLL,
    ibpbOnVcpuSwitch: true,
    until: 100_000 * US,
  });
  return { hw, sched, actor: c, c } as Cpu & { c: number };
}

function domain(cpus: Cpu[], moves: [number, number][] = []): MigrationDomain {
  const members = new Set(cpus.flatMap((c) => c.sched.threads.map((t) => t.actor)));
  const d = new MigrationDomain(members, cpus.length, COST, (actor, core) => {
    moves.push([actor, core]);
  });
  cpus.forEach((c, i) => {
    d.register({ core: i, actor: c.actor, hw: c.hw, sched: c.sched });
  });
  return d;
}

/** Runs the head of a pCPU's queue, as `choose` does. */
function run(c: Cpu, now: Time) {
  const next = c.sched.pickNext(now);
  if (!next || !('thread' in next)) throw new Error(`no vCPU thread to run at ${now}`);
  return next.thread;
}

describe('MigrationDomain', () => {
  it('an idle pCPU pulls the head of the busiest queue, with its KVM state', () => {
    const busy = cpu(0, 3);
    const lighter = cpu(1, 2);
    const empty = cpu(2, 0);
    const moves: [number, number][] = [];
    const d = domain([busy, lighter, empty], moves);
    run(busy, 1);
    run(lighter, 1);
    const head = busy.sched.queuedMigratable()[0]!;
    // Leave something of this vCPU's ASID in the destination's TLB: a stale visit's leftovers.
    const asid = head.kvm.vmcb01.asid;
    empty.hw.tlb.fill(asid * 4096 + 1, 7, 0);
    expect(empty.hw.tlb.lookup(asid * 4096 + 1, 7)).toBeGreaterThanOrEqual(0);
    expect(empty.sched.idle(COST + 1)).toBe(true);

    const r = d.pull(empty.actor, COST + 1);

    expect(r.kind).toBe('pulled');
    expect(r.kind === 'pulled' && r.thread).toBe(head);
    expect(r.kind === 'pulled' && r.from).toMatchObject({ core: 0 });
    expect(busy.sched.threads).not.toContain(head);
    expect(empty.sched.threads).toEqual([head]);
    expect(empty.sched.contended).toBe(true);
    expect(head.kvm.core).toBe(empty.hw);
    expect(head.stats.migrations).toBe(1);
    expect(d.hostOf(head.actor)).toBe(empty.actor);
    expect(moves).toEqual([[head.actor, 2]]);
    expect(empty.hw.tlb.lookup(asid * 4096 + 1, 7), 'new_asid: nothing of an earlier visit').toBeLessThan(0);
    // It runs there next, with a context switch and an IBPB-free first load (no last vCPU).
    expect(run(empty, COST + 2)).toBe(head);
  });

  it('leaves cache-hot threads and says when the first one cools', () => {
    const busy = cpu(0, 2);
    const empty = cpu(1, 0);
    const d = domain([busy, empty]);
    run(busy, 1);
    busy.sched.preemptCurrent(10 * US);
    const first = run(busy, 10 * US);
    expect(first).not.toBe(busy.sched.queuedMigratable()[0]);
    const r = d.pull(empty.actor, 20 * US);
    expect(r).toEqual({ kind: 'hot', at: 10 * US + COST });
    expect(d.pull(empty.actor, 10 * US + COST).kind).toBe('pulled');
  });

  it('never moves a pinned thread', () => {
    const busy = cpu(0, 2, 1);
    const empty = cpu(1, 0);
    const d = domain([busy, empty]);
    run(busy, 1);
    expect(busy.sched.queuedMigratable()).toEqual([]);
    expect(d.pull(empty.actor, COST + 1)).toEqual({ kind: 'none' });
    expect(d.claimIdle(busy.actor, COST + 1)).toBeUndefined();
  });

  it('a polling pCPU is not idle; a claimed one is chosen once', () => {
    const busy = cpu(0, 3);
    const polling = cpu(1, 1);
    const idleA = cpu(2, 0);
    const idleB = cpu(3, 0);
    const d = domain([busy, polling, idleA, idleB]);
    run(busy, 1);
    run(polling, 1);
    polling.sched.blockCurrent(10 * US);
    expect(polling.sched.idle(10 * US + HALT_POLL - 1)).toBe(false);
    expect(polling.sched.pollEnd(10 * US)).toBe(10 * US + HALT_POLL);
    expect(polling.sched.idle(10 * US + HALT_POLL)).toBe(true);

    const now = 20 * US;
    expect(d.claimIdle(busy.actor, now)?.actor).toBe(idleA.actor);
    expect(d.claimIdle(busy.actor, now)?.actor).toBe(idleB.actor);
    expect(d.claimIdle(busy.actor, now), 'the polling pCPU is busy').toBeUndefined();
    d.unclaim(idleA.actor);
    expect(d.claimIdle(busy.actor, now)?.actor).toBe(idleA.actor);
  });

  it('does not balance before every pCPU of the domain has registered', () => {
    const busy = cpu(0, 3);
    const empty = cpu(1, 0);
    const d = new MigrationDomain(new Set([100, 101, 102]), 3, COST, () => {});
    d.register({ core: 0, actor: busy.actor, hw: busy.hw, sched: busy.sched });
    d.register({ core: 1, actor: empty.actor, hw: empty.hw, sched: empty.sched });
    run(busy, 1);
    expect(d.pull(empty.actor, COST + 1)).toEqual({ kind: 'none' });
    expect(d.claimIdle(busy.actor, COST + 1)).toBeUndefined();
  });

  it('a pCPU whose idle periods are short stops newidle balancing (rq->avg_idle)', () => {
    const c = cpu(0, 1);
    expect(c.sched.avgIdle).toBe(2 * COST);
    expect(c.sched.idlesBriefly).toBe(false);
    let now = 1;
    const t = run(c, now);
    for (let i = 0; i < 12; i++) {
      now += 10 * US;
      c.sched.blockCurrent(now);
      c.sched.markIdle(now);
      now += 50 * US;
      c.sched.wake(t, now, true);
      expect(run(c, now)).toBe(t);
    }
    // 1/8 of each 50 µs sample: after 12 of them the average is well under the migration cost.
    expect(c.sched.avgIdle).toBeLessThan(COST);
    expect(c.sched.idlesBriefly).toBe(true);
  });
});
