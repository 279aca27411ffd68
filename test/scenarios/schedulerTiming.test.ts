import { describe, expect, it } from 'vitest';
import { decodeContext } from '../../src/hw/context.js';
import { ObsKind, type VmrunObs } from '../../src/hw/observations.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

/**
 * The host scheduler's slice is one number with two names (docs/timing.md's `schedSlice`, and
 * interface.md's `host.scheduler.slice`): both must reach the scheduler. Two vCPUs share one
 * core, so the slice decides when they alternate.
 */
async function digest(host: string): Promise<string> {
  const text = `name: slice
seed: 1
until: 3ms
hardware: { cores: 1, spec: eraps-amd }
host: ${host}
vms: [ { name: vm, vcpus: 2, guest: { processes: 2 } } ]
`;
  const r = await runSimulation(parseScenarioText(text, 'slice.yaml'), { workers: 1, inProcess: true });
  return r.traceDigest;
}

describe('the host scheduler slice', () => {
  it('is the same number whether set as host.scheduler.slice or host.latency.schedSlice', async () => {
    const byScheduler = await digest('{ scheduler: { slice: 500us } }');
    const byLatency = await digest('{ latency: { schedSlice: 500us } }');
    const byDefault = await digest('{}');
    expect(byLatency).toBe(byScheduler);
    expect(byDefault).not.toBe(byScheduler);
    // The default is the timing table's 2.8 ms, under either name.
    expect(await digest('{ scheduler: { slice: 2.8ms } }')).toBe(byDefault);
  });
});

describe('the scheduler tick (host.scheduler.tick)', () => {
  /** When L0 entered another VM than the one before: the pCPU's vCPU switches, in µs. */
  async function switchesUs(tick: string): Promise<number[]> {
    const text = `name: tick
seed: 1
until: 20ms
hardware: { cores: 1, spec: eraps-amd }
host: { scheduler: { tick: ${tick} } }
vms:
  - { name: a, vcpus: 1, guest: { processes: 2 } }
  - { name: b, vcpus: 1, guest: { processes: 2 } }
`;
    const s = parseScenarioText(text, 'tick.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true, trace: {} });
    const out: number[] = [];
    let last: number | undefined;
    for (const o of r.trace!.observations) {
      if (o.kind !== ObsKind.VMRUN) continue;
      const vm = decodeContext((o.data as VmrunObs).ctx).vm;
      if (last !== undefined && vm !== last) out.push(o.t / 1e6);
      last = vm;
    }
    return out;
  }

  it('preempts a CPU-bound vCPU at the first tick after its request ends, not at the end itself', async () => {
    // Two CPU-bound vCPUs on one core, 2.8 ms requests: exact ends drift off any grid; with
    // HZ=250 every switch follows a 4 ms tick boundary (by the context switch and VMRUN).
    const exact = await switchesUs('0');
    const hz250 = await switchesUs('4ms');
    expect(hz250.length).toBeGreaterThan(2);
    for (const t of hz250) expect(t % 4000, `switch at ${t} µs`).toBeLessThan(50);
    expect(exact.some((t) => t % 4000 > 50)).toBe(true);
    // Slices of a whole tick: fewer switches than with exact request ends.
    expect(hz250.length).toBeLessThan(exact.length);
  });
});
