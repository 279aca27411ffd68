import { loadScenario } from '../scenario/load.js';
import { runSimulation } from '../workers/runSimulation.js';

/** Issue 4's scale target: 20 simulated ms of this scenario in under a minute on 2 cores. */
export const SCALE_SCENARIO = 'scenarios/bench/overcommit-3x-64.yaml';
const TARGET_S = 60;

/**
 * Bench (g): a 64-vCPU-per-VM, 3×-overcommit scenario (192 vCPUs on 64 cores, PV TLB flush)
 * of 20 simulated ms on 2 workers. Prints wall time, kernel events and events/s.
 */
export async function benchOvercommitScale(workers = 2): Promise<{ wallS: number; events: number }> {
  const s = loadScenario(SCALE_SCENARIO);
  const r = await runSimulation(s, { workers });
  const wallS = r.wallMs / 1000;
  console.log(
    `(g) ${SCALE_SCENARIO} (192 vCPUs on 64 cores, 20 ms), ${workers} workers: ${wallS.toFixed(1)} s wall, ${r.events.toLocaleString('en-US')} events (${Math.round(r.events / wallS).toLocaleString('en-US')}/s) — target < ${TARGET_S} s ${wallS < TARGET_S ? '✓' : '✗'}`,
  );
  return { wallS, events: r.events };
}

if (process.argv[1]?.endsWith('scaleBench.js')) {
  await benchOvercommitScale();
  const { shutdownWorkers } = await import('../workers/runSimulation.js');
  await shutdownWorkers();
}
