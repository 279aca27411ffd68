import { afterAll, describe, expect, it } from 'vitest';
import { US } from '../../src/actors/time.js';
import { loadScenario } from '../../src/scenario/load.js';
import { runSimulation, shutdownWorkers } from '../../src/workers/runSimulation.js';

/**
 * The opt-in full trace (trace export, the viewer): recording never changes the digest, and the
 * recorded events, their probes and observations do not depend on the number of workers.
 */
const FILE = 'scenarios/bare-metal/shootdown-study-16c-2s.yaml';
const scenario = () => loadScenario(FILE, { sets: ['until=40us'] });

afterAll(async () => {
  await shutdownWorkers();
});

describe('recorded trace', () => {
  it('leaves the digest alone and is the same for 1 and 2 workers', async () => {
    const plain = await runSimulation(scenario(), { workers: 1, inProcess: true });
    const one = await runSimulation(scenario(), { workers: 1, inProcess: true, trace: {} });
    const two = await runSimulation(scenario(), { workers: 2, trace: {} });
    expect(one.traceDigest).toBe(plain.traceDigest);
    expect(two.traceDigest).toBe(plain.traceDigest);
    const t1 = one.trace!;
    const t2 = two.trace!;
    expect(t1.truncated).toBe(false);
    // Every delivered event, plus one opening entry per actor.
    expect(t1.entries.length).toBe(one.events + 16);
    expect(t2.entries).toEqual(t1.entries);
    expect(t2.observations).toEqual(t1.observations);
    // Messages carry their send time; it is never after arrival.
    for (const e of t1.entries) expect(e.sent).toBeLessThanOrEqual(e.t);
    const ipis = t1.entries.filter((e) => e.type === 'FLUSH_IPI');
    expect(ipis.length).toBeGreaterThan(0);
    expect(ipis.every((e) => e.src !== e.dst && e.sent < e.t)).toBe(true);
    // Cores report their RAP as deltas.
    expect(t1.entries.some((e) => (e.probe as { host?: unknown } | undefined)?.host)).toBe(true);
  });

  it('keeps a window and a limit, deterministically', async () => {
    const from = 10 * US;
    const to = 30 * US;
    const w1 = await runSimulation(scenario(), { workers: 1, inProcess: true, trace: { from, to } });
    const w2 = await runSimulation(scenario(), { workers: 2, trace: { from, to } });
    const t = w1.trace!;
    expect(w2.trace!.entries).toEqual(t.entries);
    const opening = t.entries.filter((e) => e.type === 'trace.start');
    expect(opening).toHaveLength(16);
    expect(opening.every((e) => e.t === from)).toBe(true);
    expect(t.entries.every((e) => e.t >= from && e.t < to)).toBe(true);
    expect(t.observations.every((o) => o.t >= from && o.t < to)).toBe(true);

    const l1 = await runSimulation(scenario(), { workers: 1, inProcess: true, trace: { limit: 100 } });
    const l2 = await runSimulation(scenario(), { workers: 2, trace: { limit: 100 } });
    expect(l1.trace!.truncated).toBe(true);
    expect(l1.trace!.entries.filter((e) => e.seq !== -1)).toHaveLength(100);
    expect(l2.trace!.entries).toEqual(l1.trace!.entries);
    expect(l2.trace!.observations).toEqual(l1.trace!.observations);
  });
});
