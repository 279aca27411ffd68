import { describe, expect, it } from 'vitest';
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
