import { describe, expect, it } from 'vitest';
import { collectMetrics, type Metrics } from '../../src/report/metrics.js';
import { loadScenario, parseScenarioText } from '../../src/scenario/load.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

/**
 * Migration of unpinned vCPU threads inside a last-level cache (src/host/migrationDomain.ts):
 * what it changes emerges from the scheduler, results do not depend on the worker count even
 * when domains live in different partitions (cross-domain interrupts are relayed), and no
 * translation a migrated vCPU left behind is ever used again (tlb-stale).
 */

async function run(s: Scenario, workers = 1) {
  const r = await runSimulation(s, { workers, inProcess: true });
  const metrics: Metrics = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
  return { r, metrics };
}

/** The properties that fired at least once. */
function fired(counts: Record<string, number>): string[] {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([p]) => p);
}

function stealShare(m: Metrics): number {
  const steal = m.scheduler.vcpus.reduce((a, v) => a + v.stealNs, 0);
  const run = m.scheduler.vcpus.reduce((a, v) => a + v.runNs, 0);
  return steal / (steal + run);
}

describe('sleepers under DELAY_DEQUEUE (host.scheduler.delayDequeue)', () => {
  it('vCPUs that halted ahead of the average wake without their debt and preempt spinning initiators more often', async () => {
    const file = 'scenarios/overcommit/migration-uneven.yaml';
    const sets = ['host.scheduler.migration=off', 'vms.0.guest.shootdown.every=1ms'];
    const [on, off] = await Promise.all(
      ['true', 'false'].map((dd) =>
        run(loadScenario(file, { sets: [...sets, `host.scheduler.delayDequeue=${dd}`] })),
      ),
    );
    // The same shootdowns, the same skips of sleepers; what differs is who preempts whom.
    expect(on!.metrics.shootdowns.count).toBe(off!.metrics.shootdowns.count);
    expect(on!.metrics.scheduler.kicks.preempt).toBeGreaterThan(1.5 * off!.metrics.scheduler.kicks.preempt);
    // An initiator preempted while it spins makes its shootdown wait for it: the tail grows.
    expect(on!.metrics.shootdowns.latencyNs.p99).toBeGreaterThan(100 * off!.metrics.shootdowns.latencyNs.p99);
    for (const x of [on!, off!]) expect(fired(x.r.violationCounts)).toEqual([]);
  });
});

describe('migration of unpinned vCPUs', () => {
  it('idle cores pull waiting vCPUs: less steal and more guest work than without migration', async () => {
    const file = 'scenarios/overcommit/migration-uneven.yaml';
    const on = await run(loadScenario(file));
    const off = await run(loadScenario(file, { sets: ['host.scheduler.migration=off'] }));
    expect(on.metrics.scheduler.migrations).toBeGreaterThan(20);
    expect(off.metrics.scheduler.migrations).toBe(0);
    expect(fired(on.r.violationCounts)).toEqual([]);
    expect(stealShare(on.metrics)).toBeLessThan(stealShare(off.metrics) / 2);
    expect(on.metrics.work.opsPerSecond).toBeGreaterThan(off.metrics.work.opsPerSecond * 1.1);
    // Per vCPU, migrations are counted once, wherever the thread ended up.
    expect(on.metrics.scheduler.vcpus).toHaveLength(12);
    expect(on.metrics.scheduler.vcpus.reduce((a, v) => a + v.migrations, 0)).toBe(
      on.metrics.scheduler.migrations,
    );
  });

  // Two sockets of two 4-core LLCs, a VM of 20 vCPUs across them and a pinned VM: the active
  // domains land in different partitions with 2 and 4 workers, so IPIs between vCPUs of
  // different domains take the relay through the target's own actor.
  const yaml = (avic: boolean) => `name: mig16
seed: 3
until: 10ms
hardware: { sockets: 2, coresPerSocket: 8, coresPerLlc: 4, spec: eraps-amd }
host: { npt: true, policy: linux-7.0, avic: ${avic} }
vms:
  - name: a
    vcpus: 20
    pvTlbFlush: true
    guest: { processes: 2, contextSwitch: { every: 100us }, shootdown: { every: 3ms, pages: 2 }, hlt: { every: 1500us, for: 1ms } }
  - name: b
    vcpus: 4
    pin: [0, 5, 9, 14]
    guest: { processes: 1, shootdown: { every: 300us, pages: 1 } }
`;

  for (const avic of [false, true]) {
    it(`gives the same results at 1, 2 and 4 workers across domains (AVIC ${avic ? 'on' : 'off'})`, async () => {
      const s = parseScenarioText(yaml(avic), 'mig16.yaml');
      const runs = [];
      for (const workers of [1, 2, 4]) {
        const { r, metrics } = await run(s, workers);
        expect(r.topology.partitions).toBe(workers);
        runs.push({ digest: r.traceDigest, events: r.events, violations: r.violationCounts, metrics });
      }
      const [one, ...more] = runs;
      expect(one!.metrics.scheduler.migrations).toBeGreaterThan(0);
      expect(one!.metrics.shootdowns.count).toBeGreaterThan(20);
      expect(fired(one!.violations), 'tlb-stale holds: a migrated vCPU starts cold (new_asid)').toEqual([]);
      for (const other of more) expect(other).toEqual(one);
    });
  }
});
