import { describe, expect, it } from 'vitest';
import { collectMetrics } from '../../src/report/metrics.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

/**
 * EEVDF weights (`vms[].nice`, `host.tasks[].nice`): threads that never sleep share a pCPU in
 * proportion to sched_prio_to_weight. Nothing in the model divides CPU time by weight directly;
 * the shares come out of vruntime, virtual deadlines and eligibility.
 */
async function twoVms(niceA: number, niceB: number) {
  const text = `name: nice-${niceA}-${niceB}
seed: 1
until: 200ms
hardware: { cores: 1, spec: eraps-amd }
vms:
  - { name: a, vcpus: 1, pin: [0], nice: ${niceA}, guest: { processes: 1, contextSwitch: { every: 0 } } }
  - { name: b, vcpus: 1, pin: [0], nice: ${niceB}, guest: { processes: 1, contextSwitch: { every: 0 } } }
`;
  const r = await runSimulation(parseScenarioText(text, 'nice.yaml'), { workers: 1, inProcess: true });
  const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
  const [a, b] = ['a', 'b'].map((vm) => m.scheduler.vcpus.find((v) => v.vm === vm)!);
  return { a: a!, b: b!, m };
}

async function taskBeside(nice: number) {
  const text = `name: task-nice-${nice}
seed: 1
until: 50ms
hardware: { cores: 1, spec: eraps-amd }
host:
  tasks: [ { name: kworker, every: 1ms, run: 900us, nice: ${nice} } ]
vms:
  - { name: vm, vcpus: 1, guest: { processes: 1, contextSwitch: { every: 0 } } }
`;
  const r = await runSimulation(parseScenarioText(text, 'task-nice.yaml'), { workers: 1, inProcess: true });
  return collectMetrics(r.actors, r.topology.timing, r.simulatedPs).scheduler;
}

describe('EEVDF weights', () => {
  it('two busy vCPUs on one pCPU share it by weight: nice -5 gets 3121 / (3121 + 1024) of it', async () => {
    const even = await twoVms(0, 0);
    expect(even.a.runNs / even.b.runNs).toBeGreaterThan(0.95);
    expect(even.a.runNs / even.b.runNs).toBeLessThan(1.05);
    const heavy = await twoVms(-5, 0);
    expect(heavy.a.nice).toBe(-5);
    expect(heavy.a.runNs / heavy.b.runNs).toBeGreaterThan(0.9 * (3121 / 1024));
    expect(heavy.a.runNs / heavy.b.runNs).toBeLessThan(1.1 * (3121 / 1024));
    // The heavier thread keeps the pCPU for several requests in a row (pick_eevdf picks it
    // again: no preemption, no context switch), so it is preempted less often.
    expect(heavy.a.preemptions).toBeLessThan(even.a.preemptions);
    // The lighter one is not starved: it waits a few of the other's requests at most.
    expect(heavy.b.maxStealNs).toBeLessThan(5 * 2_800_000);
    expect(heavy.b.runNs).toBeGreaterThan(0.2 * 200_000_000);
    // Swapped: the same shares the other way round.
    const light = await twoVms(5, 0);
    expect(light.b.runNs / light.a.runNs).toBeGreaterThan(0.9 * (1024 / 335));
    expect(light.b.runNs / light.a.runNs).toBeLessThan(1.1 * (1024 / 335));
  });

  it('a host task at nice -20 gets nearly its 90% of the pCPU beside a busy vCPU; at nice 0 half, at 5 a quarter', async () => {
    const [hi] = (await taskBeside(-20)).hostTasks;
    const [fair] = (await taskBeside(0)).hostTasks;
    const [lo] = (await taskBeside(5)).hostTasks;
    expect(hi!.nice).toBe(-20);
    // It wants 900 µs of every 1 ms (45 ms of the 50); it waits little (RUN_TO_PARITY still lets
    // a vCPU that is eligible finish its request when the task wakes owed nothing).
    expect(hi!.runNs).toBeGreaterThan(0.85 * 50_000_000);
    expect(hi!.waitNs).toBeLessThan(0.05 * 50_000_000);
    expect(fair!.runNs).toBeGreaterThan(0.4 * 50_000_000);
    expect(fair!.runNs).toBeLessThan(0.6 * 50_000_000);
    // 335 / (335 + 1024) ≈ 25%.
    expect(lo!.runNs).toBeGreaterThan(0.2 * 50_000_000);
    expect(lo!.runNs).toBeLessThan(0.3 * 50_000_000);
  });
});
