import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HostedActor, Port } from '../../src/actors/hostedActor.js';
import { Partition, type PartitionTopology } from '../../src/actors/partition.js';
import type { Envelope } from '../../src/actors/types.js';
import { runWindows } from '../../src/actors/windowLoop.js';

/**
 * A synthetic network: each actor, on every delivery, draws from its own stream and forwards
 * a token to a drawn peer. Everything observable (per-actor delivery order, digests) must be
 * the same whatever the partitioning.
 */
function gossip(id: string, n: number, log: string[]): HostedActor {
  let port: Port;
  let hops = 0;
  return {
    id,
    start(p) {
      port = p;
      if (p.self % 2 === 0) p.schedule(p.rng.int(0, 5), 'tick', { hop: 0 });
    },
    deliver(e: Envelope) {
      hops++;
      log.push(`${port.now()}:${e.type}:${e.src}:${e.seq}`);
      port.observe('hop', { hops });
      const hop = (e.data as { hop: number }).hop;
      if (hop < 40) {
        const dst = port.rng.int(0, n - 1);
        port.send(dst, 'tick', { hop: hop + 1 }, port.rng.int(0, 3), 30);
      }
    },
    stateLabel: () => String(hops),
    stats: () => ({ hops }),
  };
}

async function run(n: number, assign: number[]) {
  const ids = Array.from({ length: n }, (_, i) => `a${String(i).padStart(3, '0')}`);
  const parts = Math.max(...assign) + 1;
  const topology: PartitionTopology = {
    ids,
    partitionOf: assign,
    // Latency belongs to the topology, never to the partitioning.
    latency: (s, d) => (s === d ? 0 : 7 + ((s + d) % 3)),
  };
  const logs = ids.map(() => [] as string[]);
  const partitions = Array.from({ length: parts }, (_, k) => {
    const actors = new Map<number, HostedActor>();
    ids.forEach((id, i) => {
      if (assign[i] === k) actors.set(i, gossip(id, n, logs[i]!));
    });
    return new Partition({ index: k, topology, actors, rootSeed: 99, maxEvents: 1e6 });
  });
  const initialNext = partitions.map((p) => p.start());
  const observed: string[] = [];
  const loop = await runWindows({
    partitions: partitions.map((p) => {
      let result: ReturnType<typeof p.runWindow> | undefined;
      return {
        begin: (end: number, inbound: Envelope[]) => {
          result = p.runWindow(end, inbound);
        },
        collect: () => result!,
      };
    }),
    initialNext,
    partitionOf: assign,
    lookahead: parts > 1 ? 7 : Number.POSITIVE_INFINITY,
    until: 10_000,
    maxWindow: 50,
    maxEvents: 1e6,
    onWindow: (obs) => {
      for (const o of obs) observed.push(`${o.t}:${o.actor}:${JSON.stringify(o.data)}`);
    },
  });
  const digests = partitions.flatMap((p) => p.summarize()).sort((a, b) => a.index - b.index);
  return { logs, observed, events: loop.events, digests: digests.map((d) => d.digest) };
}

describe('partition independence', () => {
  it('gives the same per-actor history, observations and digests for any partitioning', async () => {
    const n = 8;
    const reference = await run(n, new Array(n).fill(0));
    expect(reference.events).toBeGreaterThan(50);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
        async (raw) => {
          // Renumber partitions densely (0..k-1).
          const dense = [...new Set(raw)].sort();
          const assign = raw.map((x) => dense.indexOf(x));
          const r = await run(n, assign);
          expect(r.events).toBe(reference.events);
          expect(r.logs).toEqual(reference.logs);
          expect(r.observed).toEqual(reference.observed);
          expect(r.digests).toEqual(reference.digests);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('refuses a message that would arrive before the event being handled', () => {
    const topology: PartitionTopology = { ids: ['a'], partitionOf: [0], latency: () => 0 };
    const bad: HostedActor = {
      id: 'a',
      start(p) {
        p.schedule(5, 'go', null, 30);
        this.deliver = () => p.schedule(0, 'back', null, 10);
      },
      deliver() {},
      stateLabel: () => '',
      stats: () => null,
    };
    const part = new Partition({
      index: 0,
      topology,
      actors: new Map([[0, bad]]),
      rootSeed: 1,
      maxEvents: 10,
    });
    part.start();
    expect(() => part.runWindow(100)).toThrow(/would arrive before/);
  });

  it('stops a runaway actor at the event cap and names it', () => {
    const topology: PartitionTopology = { ids: ['loop'], partitionOf: [0], latency: () => 0 };
    let port: Port;
    const runaway: HostedActor = {
      id: 'loop',
      start(p) {
        port = p;
        p.schedule(1, 'again', null);
      },
      deliver() {
        port.schedule(1, 'again', null);
      },
      stateLabel: () => '',
      stats: () => null,
    };
    const part = new Partition({
      index: 0,
      topology,
      actors: new Map([[0, runaway]]),
      rootSeed: 1,
      maxEvents: 100,
    });
    part.start();
    expect(() => part.runWindow(1e9)).toThrow(/loop.*event cap of 100/s);
  });
});
