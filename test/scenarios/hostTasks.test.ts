import { describe, expect, it } from 'vitest';
import { collectMetrics } from '../../src/report/metrics.js';
import { loadScenario, parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

/**
 * Host tasks beside vCPU threads (scenarios/overcommit/host-tasks.yaml): a vhost-like kernel
 * thread per core preempts the vCPU there, so a guest without PV TLB flush waits for preempted
 * targets even with one vCPU per core, and PV TLB flush takes that wait away — the effect
 * emerges from the run queues, it is not written in.
 */
async function run(sets: string[]) {
  const s = loadScenario('scenarios/overcommit/host-tasks.yaml', { sets: ['until=10ms', ...sets] });
  const r = await runSimulation(s, { workers: 1, inProcess: true });
  return { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
}

describe('host tasks beside vCPU threads', () => {
  it('preempt vCPUs: shootdowns wait for them without PV TLB flush, not with it', async () => {
    const off = await run([]);
    const on = await run(['vms.0.pvTlbFlush=true']);
    const none = await run(['host.tasks=[]']);
    for (const x of [off, on, none]) {
      expect(Object.values(x.r.violationCounts).every((n) => n === 0)).toBe(true);
    }
    // Every core has its worker, and each got the pCPU several times.
    expect(off.m.scheduler.hostTasks).toHaveLength(8);
    for (const t of off.m.scheduler.hostTasks) expect(t.bursts).toBeGreaterThan(2);
    expect(none.m.scheduler.hostTasks).toEqual([]);
    expect(off.m.scheduler.kicks.preempt).toBeGreaterThan(0);
    expect(none.m.scheduler.kicks.preempt).toBe(0);
    // Without PV TLB flush most of the initiators' wait is for preempted targets…
    const w = off.m.shootdowns.waitNs;
    expect(w.preemptedWait).toBeGreaterThan(0.5 * (w.delivery + w.preemptedWait + w.handler));
    expect(off.m.shootdowns.latencyNs!.p99).toBeGreaterThan(100_000);
    // …PV TLB flush skips them, and the guest gets its work done. (Its slowest shootdowns are
    // those whose initiator itself a worker's wake-up preempted: EEVDF lets a worker owed time
    // in at once, whatever the vCPU was doing.)
    expect(on.m.shootdowns.pvDeferredTargets).toBeGreaterThan(100);
    expect(on.m.shootdowns.waitNs.preemptedWait).toBe(0);
    expect(on.m.shootdowns.latencyNs!.p50).toBeLessThan(20_000);
    expect(on.m.shootdowns.latencyNs!.p99).toBeLessThan(off.m.shootdowns.latencyNs!.p99);
    expect(on.m.work.opsPerSecond).toBeGreaterThan(1.5 * off.m.work.opsPerSecond);
    // And without the tasks there is nothing to skip.
    expect(none.m.shootdowns.latencyNs!.p99).toBeLessThan(20_000);
  });

  it('a spinner alone on its pCPU still boosts its target where a worker preempted it (yield_to), without yielding', async () => {
    const off = await run([]);
    const sch = off.m.scheduler;
    expect(sch.pleExits).toBeGreaterThan(20);
    // Every yield boosts its target; most spinners have no other thread on their pCPU, give
    // nothing away, and boost all the same.
    expect(sch.boosts).toBeGreaterThan(2 * sch.directedYields);
    expect(sch.vcpus.reduce((n, v) => n + v.boosted, 0)).toBe(sch.boosts);
    const noPle = await run(['host.latency.pleWindow=0']);
    expect(noPle.m.scheduler.boosts).toBe(0);
  });

  it('a burst longer than a slice is preempted at the slice end, so a target waits one slice, not the burst', async () => {
    const text = `name: long-task
seed: 1
until: 20ms
hardware: { cores: 2, spec: eraps-amd }
host:
  tasks: [ { name: hog, cores: [1], every: 10ms, run: 6ms } ]
vms:
  - name: vm
    vcpus: 2
    pvTlbFlush: false
    guest: { processes: 1, shootdown: { every: 100us } }
`;
    const r = await runSimulation(parseScenarioText(text, 'long-task.yaml'), { workers: 1, inProcess: true });
    const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
    const SLICE_NS = 2_800_000;
    // vCPU 1's shootdown targets wait while the hog runs, but never longer than its slice
    // (6 ms if the burst ran whole).
    expect(m.shootdowns.latencyNs!.max).toBeGreaterThan(SLICE_NS / 2);
    expect(m.shootdowns.latencyNs!.max).toBeLessThan(SLICE_NS + 100_000);
    // The vCPU beside the hog never waits longer than one of its slices either.
    const v1 = m.scheduler.vcpus.find((v) => v.vcpu === 1)!;
    expect(v1.maxStealNs).toBeGreaterThan(SLICE_NS / 2);
    expect(v1.maxStealNs).toBeLessThan(SLICE_NS + 100_000);
    expect(m.scheduler.vcpus.find((v) => v.vcpu === 0)!.maxStealNs).toBe(0);
    // Half the pCPU each (EEVDF's fair share): the hog cannot finish 6 ms every 10 ms.
    const [hog] = m.scheduler.hostTasks;
    expect(hog!.maxWaitNs).toBeLessThan(SLICE_NS + 100_000);
    expect(hog!.runNs).toBeGreaterThan(5_000_000);
  });
});
