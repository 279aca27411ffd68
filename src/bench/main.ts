import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { assign, createActor, setup } from 'xstate';
import type { HostedActor, Port } from '../actors/hostedActor.js';
import { createMachineActor } from '../actors/machineActor.js';
import { Partition } from '../actors/partition.js';
import { Priority } from '../actors/priority.js';
import { version } from '../cli/version.js';
import { Rap } from '../hw/rap.js';
import { Tlb } from '../hw/tlb.js';
import { loadScenario } from '../scenario/load.js';
import { runLocal } from '../sweep/localBackend.js';
import { planSweep } from '../sweep/plan.js';
import { runSimulation, shutdownWorkers } from '../workers/runSimulation.js';

/**
 * `npm run bench`: the figures the foundation is judged by, measured in one run on this machine.
 * (a) raw xstate `actor.send` rate of a machine comparable to the pCPU machine; (b) the kernel's
 * delivered-event rate hosting that machine, and (b)/(a); (c) the RAP/TLB hot path; (d) wall
 * time and speedup of a 64-core bare-metal scenario on 1 and 2 workers.
 */

interface PingCtx {
  port: Port | undefined;
  peer: number;
  count: number;
  acks: number;
}

/** A machine shaped like the pCPU machine: guarded transitions, assigns, a transient router. */
function pingMachine() {
  return setup({
    types: {
      context: {} as PingCtx,
      input: {} as { port?: Port; peer: number },
      events: {} as { type: 'PING' } | { type: 'ACK' },
    },
    actions: {
      count: assign(({ context }) => ({ count: context.count + 1 })),
      forward: ({ context }) => context.port?.send(context.peer, 'PING', {}, 1, Priority.MESSAGE),
      ack: assign(({ context }) => ({ acks: context.acks + 1 })),
    },
    guards: { even: ({ context }) => context.count % 2 === 0 },
  }).createMachine({
    context: ({ input }) => ({ port: input.port, peer: input.peer, count: 0, acks: 0 }),
    initial: 'idle',
    states: {
      idle: { on: { PING: { actions: ['count', 'forward'], target: 'route' }, ACK: { actions: 'ack' } } },
      route: { always: [{ guard: 'even', target: 'idle' }, { target: 'busy' }] },
      busy: { on: { PING: { actions: ['count', 'forward'], target: 'route' }, ACK: { actions: 'ack' } } },
    },
  });
}

function rate(n: number, ms: number): number {
  return (n / ms) * 1000;
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
}

/**
 * (a): the same 16 machines driven by a plain FIFO instead of the kernel: each PING's `forward`
 * pushes the next PING onto an array, so the machines do the same work as under the kernel, and
 * the difference (b) − (a) is the kernel's own cost (queue, keys, links, digest).
 */
function benchRawSend(n: number): number {
  const actors = 16;
  const fifo: number[] = [];
  const stub = { send: (dst: number) => fifo.push(dst) } as unknown as Port;
  const refs = Array.from({ length: actors }, (_, i) => {
    const a = createActor(pingMachine(), { input: { port: stub, peer: (i + 1) % actors } });
    a.start();
    return a;
  });
  for (let i = 0; i < actors; i++) fifo.push(i);
  const t0 = performance.now();
  let head = 0;
  for (let k = 0; k < n; k++) refs[fifo[head++]!]!.send({ type: 'PING' });
  return rate(n, performance.now() - t0);
}

function benchKernel(n: number): number {
  const actors = 16;
  const ids = Array.from({ length: actors }, (_, i) => `ping:${String(i).padStart(2, '0')}`);
  const map = new Map<number, HostedActor>();
  ids.forEach((id, i) => {
    const actor = createMachineActor(
      id,
      pingMachine(),
      (port) => ({ port, peer: (i + 1) % actors }),
      () => null,
    );
    map.set(i, actor);
  });
  const part = new Partition({
    index: 0,
    topology: { ids, partitionOf: ids.map(() => 0), latency: () => 1 },
    actors: map,
    rootSeed: 1,
    maxEvents: n * 2,
  });
  part.start();
  part.receive(
    ids.map((_, i) => ({ t: 1, p: Priority.MESSAGE, src: i, seq: -2, dst: i, type: 'PING', data: {} })),
  );
  const t0 = performance.now();
  let events = 0;
  let end = 1000;
  while (events < n) {
    events += part.runWindow(end).events;
    end += 1000;
  }
  return rate(events, performance.now() - t0);
}

function benchHotPath(n: number): number {
  const rap = new Rap(64);
  const tlb = new Tlb();
  const t0 = performance.now();
  let depth = 0;
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    if ((i & 15) === 15) {
      const page = x & 15;
      if (tlb.lookup(1, page) < 0) tlb.fill(1, page, i);
    } else if (depth === 0 || (depth < 16 && (x & 1) === 0)) {
      rap.push(0x1000 + depth, 1, 0, i, false);
      depth++;
    } else {
      rap.pop(0x1000 + depth - 1);
      depth--;
    }
  }
  return rate(n, performance.now() - t0);
}

/** One `rapsim run`-like simulation (fresh worker threads when the count changes), wall ms. */
async function benchScenario(
  file: string,
  workers: number,
): Promise<{ wallMs: number; events: number; digest: string }> {
  const s = loadScenario(file, {});
  const t0 = performance.now();
  const r = await runSimulation(s, { workers });
  return { wallMs: performance.now() - t0, events: r.events, digest: r.traceDigest };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function main(): Promise<void> {
  const root = resolve(import.meta.dirname, '../..');
  // Warm up the JIT on each path before measuring.
  benchRawSend(50_000);
  benchKernel(50_000);
  benchHotPath(2_000_000);
  const a = benchRawSend(200_000);
  const b = benchKernel(200_000);
  const c = benchHotPath(50_000_000);
  console.log('rapsim bench (one run on this machine)');
  console.log(`(a) raw xstate actor.send, pCPU-like machine:   ${fmt(a)} events/s`);
  console.log(
    `(b) kernel-delivered events, same machine:       ${fmt(b)} events/s   (b)/(a) = ${(b / a).toFixed(2)}   target ≥ 0.70`,
  );
  console.log(`(c) RAP/TLB hot path (push/pop/look-up):        ${fmt(c)} ops/s      target ≥ 20 M`);
  const file = resolve(root, 'scenarios/bench/bare-metal-64.yaml');
  // This machine's timings vary by ±30% from run to run: alternate the two configurations and
  // take medians of three.
  const one: number[] = [];
  const two: number[] = [];
  let w1 = await benchScenario(file, 1);
  let w2 = await benchScenario(file, 2);
  for (let i = 0; i < 3; i++) {
    w1 = await benchScenario(file, 1);
    one.push(w1.wallMs);
    w2 = await benchScenario(file, 2);
    two.push(w2.wallMs);
  }
  await shutdownWorkers();
  const speedup = median(one) / median(two);
  console.log(
    `(d) 64-core bare metal, 2 ms simulated (median of 3): --workers 1 ${median(one).toFixed(0)} ms, --workers 2 ${median(two).toFixed(0)} ms, speedup ${speedup.toFixed(2)}×   target ≥ 1.5×`,
  );
  console.log(
    `    ${fmt(w1.events)} events; digests ${w1.digest === w2.digest ? 'identical' : 'DIFFER'} across worker counts`,
  );
  // (f) VM scenarios: world switches go through two machines per core (KVM and the vCPU); the
  // kernel's delivered-events rate must stay within 20% of the bare-metal one (issue 3).
  const vmFile = resolve(root, 'scenarios/bench/vm-16.yaml');
  const bareRate = median(one.map((ms) => (w1.events / ms) * 1000));
  const vmRuns: { wallMs: number; events: number }[] = [];
  for (let i = 0; i < 3; i++) vmRuns.push(await benchScenario(vmFile, 1));
  await shutdownWorkers();
  const vmRate = median(vmRuns.map((r) => (r.events / r.wallMs) * 1000));
  console.log(
    `(f) VM (16 vCPUs, NPT off, linux-7.0), --workers 1: ${fmt(vmRuns[0]!.events)} events, ${fmt(vmRate)} events/s vs bare metal ${fmt(bareRate)} events/s: ratio ${(vmRate / bareRate).toFixed(2)}   target ≥ 0.80`,
  );
}

await main();

// ─── (e) sweeps (issue 5) ──────────────────────────────────────────────────────────────────────

/**
 * (e): `rapsim sweep` of 200 short runs (the litmus of litmus-stuffing-too-short.yaml, seeds
 * 1..200) on 1 and 2 sweep threads, threads started per sweep as the CLI does; alternated, median
 * of 3. Also checks that both give the same outcomes.
 */
async function benchSweep(): Promise<void> {
  const file = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';
  const text = readFileSync(resolve(import.meta.dirname, '../..', file), 'utf8');
  const seeds = Array.from({ length: 200 }, (_, i) => i + 1);
  const plan = planSweep({ rapsim: version, file, text, sets: [], vary: [], seeds, replayOf: () => '' });
  const sweep = async (threads: number) => {
    const t0 = performance.now();
    const outcomes = await runLocal(plan, { threads, version });
    return { wallMs: performance.now() - t0, json: JSON.stringify(outcomes) };
  };
  await sweep(2); // warm-up: file cache, JIT of the coordinator
  const one: number[] = [];
  const two: number[] = [];
  let same = true;
  for (let i = 0; i < 3; i++) {
    const a = await sweep(1);
    const b = await sweep(2);
    one.push(a.wallMs);
    two.push(b.wallMs);
    same &&= a.json === b.json;
  }
  const speedup = median(one) / median(two);
  console.log(
    `(e) sweep of 200 short runs (median of 3): --threads 1 ${median(one).toFixed(0)} ms, --threads 2 ${median(two).toFixed(0)} ms, speedup ${speedup.toFixed(2)}×   target ≥ 1.7×`,
  );
  console.log(`    outcomes ${same ? 'identical' : 'DIFFER'} across thread counts`);
}

await benchSweep();
