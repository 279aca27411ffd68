import { describe, expect, it } from 'vitest';
import { collectMetrics } from '../../src/report/metrics.js';
import { loadScenario } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

/**
 * PAUSE-loop exiting with directed yield, end to end (scenarios/overcommit/overcommit-3x.yaml,
 * 3 VMs of 8 vCPUs on 8 cores, no PV TLB flush, cut to 5 ms): initiators that spin on preempted
 * targets take PAUSE exits, find vCPUs of their VM preempted in kernel mode, and give their
 * pCPU to whoever waits there; with the window at 0 (PAUSE not intercepted) they spin out
 * their slices. Nothing here is written in: it comes from the exit, kvm_vcpu_on_spin's rules
 * and EEVDF's run queues.
 */
async function run(sets: string[]) {
  const s = loadScenario('scenarios/overcommit/overcommit-3x.yaml', { sets: ['until=5ms', ...sets] });
  const r = await runSimulation(s, { workers: 1, inProcess: true });
  return { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
}

describe('PAUSE-loop exiting under overcommit', () => {
  it('spinners exit and yield to their VM’s preempted vCPUs; without it they spin out their slices', async () => {
    const ple = await run([]);
    const off = await run(['host.latency.pleWindow=0']);
    for (const x of [ple, off]) expect(Object.values(x.r.violationCounts).every((n) => n === 0)).toBe(true);
    expect(ple.m.exits.pause).toBeGreaterThan(50);
    expect(ple.m.scheduler.pleExits).toBe(ple.m.exits.pause);
    expect(ple.m.scheduler.directedYields).toBeGreaterThan(0.5 * ple.m.scheduler.pleExits);
    expect(ple.m.scheduler.directedYields).toBeLessThanOrEqual(ple.m.scheduler.pleExits);
    expect(off.m.exits.pause ?? 0).toBe(0);
    expect(off.m.scheduler.directedYields).toBe(0);
    // The time spinners gave away is work for the other VMs, and more shootdowns complete.
    expect(ple.m.work.opsPerSecond).toBeGreaterThan(2 * off.m.work.opsPerSecond);
    expect(ple.m.shootdowns.count).toBeGreaterThan(2 * off.m.shootdowns.count);
    // EEVDF keeps the yielders' lag, so no VM is starved by one that never spins.
    const work = ple.m.work.byVm.map((v) => v.opsPerSecond);
    expect(Math.min(...work)).toBeGreaterThan(0.3 * Math.max(...work));
  });
});
