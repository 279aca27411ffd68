import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Time } from '../../src/actors/time.js';
import { HostScheduler, type VcpuThread } from '../../src/host/hostScheduler.js';
import { MigrationDomain } from '../../src/host/migrationDomain.js';
import { fakePort, kvmOn, makeCore } from './kvmHelpers.js';

/**
 * MigrationDomain under random sequences of scheduler operations on 2–4 pCPUs: a thread is always
 * on exactly one pCPU, its KVM state and the domain's map agree on which, pinned threads never
 * move, and every pull takes a cache-cold thread from a busiest queue.
 */

const US = 1_000_000;
const COST = 500 * US;

const caseArb = fc
  .record({
    threads: fc.array(fc.record({ cpu: fc.integer({ min: 0, max: 3 }), pinned: fc.boolean() }), {
      minLength: 1,
      maxLength: 8,
    }),
    cpus: fc.integer({ min: 2, max: 4 }),
  })
  .chain(({ threads, cpus }) =>
    fc.record({
      cpus: fc.constant(cpus),
      threads: fc.constant(threads.map((t) => ({ ...t, cpu: t.cpu % cpus }))),
      ops: fc.array(
        fc.oneof(
          {
            weight: 3,
            arbitrary: fc.record({
              kind: fc.constantFrom('pick' as const, 'preempt' as const, 'block' as const),
              cpu: fc.integer({ min: 0, max: cpus - 1 }),
              dt: fc.integer({ min: 0, max: 800 }),
            }),
          },
          {
            // Pulls are what is under test: often, and by whichever pCPU.
            weight: 3,
            arbitrary: fc.record({
              kind: fc.constant('pull' as const),
              cpu: fc.integer({ min: 0, max: cpus - 1 }),
              dt: fc.integer({ min: 0, max: 800 }),
            }),
          },
          {
            weight: 1,
            arbitrary: fc.record({
              kind: fc.constant('wake' as const),
              thread: fc.integer({ min: 0, max: threads.length - 1 }),
              dt: fc.integer({ min: 0, max: 800 }),
            }),
          },
        ),
        { maxLength: 60 },
      ),
    }),
  );

describe('MigrationDomain under random operation sequences', () => {
  it('keeps every thread on exactly one pCPU, in step with KVM and the domain, and pulls only cold threads from a busiest queue', () => {
    let totalPulls = 0;
    fc.assert(
      fc.property(caseArb, ({ cpus, threads, ops }) => {
        const port = fakePort();
        const hws = Array.from({ length: cpus }, (_, c) => {
          const hw = makeCore('eraps-amd');
          (hw.params as { index: number }).index = c;
          return hw;
        });
        const scheds = hws.map(
          (hw, c) =>
            new HostScheduler({
              port,
              core: hw,
              threads: threads
                .map((t, i) => ({ t, i }))
                .filter(({ t }) => t.cpu === c)
                .map(({ t, i }) => ({
                  kvm: kvmOn(hw, port, 0, i, 100 + i),
                  actor: 100 + i,
                  pvTlbFlush: true,
                  vmName: 'vm',
                  migratable: !t.pinned,
                })),
              slice: 2_800 * US,
              haltPoll: 200 * US,
              migrationCost: COST,
              ibpbOnVcpuSwitch: true,
              until: Number.MAX_SAFE_INTEGER,
            }),
        );
        const domain = new MigrationDomain(new Set(threads.map((_, i) => 100 + i)), cpus, COST, () => {});
        scheds.forEach((sched, c) => {
          domain.register({ core: c, actor: c, hw: hws[c]!, sched });
        });
        const all: VcpuThread[] = scheds.flatMap((s) => s.threads);
        const home = new Map(all.map((t) => [t.actor, threads[t.actor - 100]!.cpu]));
        let now: Time = 1;
        let pulls = 0;

        for (const op of ops) {
          now += op.dt * US;
          if (op.kind === 'wake') {
            const t = all.find((x) => x.actor === 100 + op.thread)!;
            const owner = scheds.find((s) => s.threads.includes(t))!;
            owner.wake(t, now, true);
            continue;
          }
          const s = scheds[op.cpu]!;
          if (op.kind === 'pick' && !s.current) s.pickNext(now);
          else if (op.kind === 'preempt' && s.current) s.preemptCurrent(now);
          else if (op.kind === 'block' && s.current) s.blockCurrent(now);
          else if (op.kind === 'pull' && s.idle(now)) {
            const before = scheds.map((x) => x.queuedMigratable().length);
            const r = domain.pull(op.cpu, now);
            if (r.kind === 'pulled') {
              pulls++;
              const from = scheds.indexOf(r.from.sched);
              // From a busiest queue (counted before the pull), a thread that was cold.
              expect(before[from]).toBe(Math.max(...before.filter((_, i) => i !== op.cpu)));
              expect(r.thread.stoppedAt === 0 || r.thread.stoppedAt + COST <= now).toBe(true);
              expect(r.thread.migratable).toBe(true);
            } else if (r.kind === 'hot') {
              expect(r.at).toBeGreaterThan(now);
            }
          }
          // Every thread on exactly one pCPU; KVM's pCPU and the domain's map say the same.
          for (const t of all) {
            const owners = scheds.filter((x) => x.threads.includes(t));
            expect(owners).toHaveLength(1);
            const c = scheds.indexOf(owners[0]!);
            expect(t.kvm.core).toBe(hws[c]);
            expect(domain.hostOf(t.actor)).toBe(c);
            if (!t.migratable) expect(c).toBe(home.get(t.actor));
          }
          for (const x of scheds) {
            if (x.current) expect(x.threads).toContain(x.current);
            for (const q of x.queuedMigratable()) expect(q.state).toBe('runnable');
          }
        }
        expect(all.reduce((n, t) => n + t.stats.migrations, 0)).toBe(pulls);
        totalPulls += pulls;
      }),
      { numRuns: 300 },
    );
    // The sequences exercised what is under test.
    expect(totalPulls).toBeGreaterThan(40);
  });
});
