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
async function simulate(sets: string[]) {
  const s = loadScenario('scenarios/overcommit/overcommit-3x.yaml', { sets: ['until=5ms', ...sets] });
  const r = await runSimulation(s, { workers: 1, inProcess: true });
  return { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
}

describe('PAUSE-loop exiting under overcommit', () => {
  it('spinners exit and yield to their VM’s preempted vCPUs; without it they spin out their slices', async () => {
    const [ple, off] = await Promise.all([simulate([]), simulate(['host.latency.pleWindow=0'])]);
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
    // Per VM: every shootdown is its initiator's VM's, and each VM's latencies are its own.
    const byVm = ple.m.shootdowns.byVm;
    expect(byVm.map((v) => v.vm)).toEqual(['vm0', 'vm1', 'vm2']);
    expect(byVm.reduce((n, v) => n + v.count, 0)).toBe(ple.m.shootdowns.count);
    for (const v of byVm) expect(v.latencyNs.max).toBeLessThanOrEqual(ple.m.shootdowns.latencyNs.max);
    expect(Math.max(...byVm.map((v) => v.latencyNs.max))).toBe(ple.m.shootdowns.latencyNs.max);
  });

  it('a 6.17+ host (yield forfeits the request) can starve the VM that spins; the older rule keeps its lag', async () => {
    // overcommit-2x.yaml for 20 ms, seed 1: the effect is emergent and not on every seed (README,
    // the yield-rule table: 6 of 9 seeds at 60 ms), so one seed where it shows is pinned here.
    const twoX = (sets: string[]) =>
      runSimulation(
        loadScenario('scenarios/overcommit/overcommit-2x.yaml', { sets: ['until=20ms', ...sets] }),
        {
          workers: 1,
          inProcess: true,
        },
      ).then((r) => collectMetrics(r.actors, r.topology.timing, r.simulatedPs));
    const [forfeit, keepLag] = await Promise.all([twoX([]), twoX(['host.scheduler.yieldForfeit=false'])]);
    const spread = (m: typeof forfeit) => {
      const work = m.work.byVm.map((v) => v.opsPerSecond);
      return Math.min(...work) / Math.max(...work);
    };
    // Each yield costs the spinner the rest of its slice in vruntime for ≈ 64 µs of spinning,
    // so a VM whose vCPUs keep meeting preempted targets falls behind and stays there
    // (the case Wanpeng Li's 2026 directed-yield series is about: "penalizing the yielding vCPU").
    expect(spread(forfeit)).toBeLessThan(0.1);
    // Before 6.17 a yielder kept what it was owed and came back soon.
    expect(spread(keepLag)).toBeGreaterThan(0.5);
    for (const m of [forfeit, keepLag]) expect(m.scheduler.directedYields).toBeGreaterThan(50);
  });
});
