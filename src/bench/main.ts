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
import { collectMetrics } from '../report/metrics.js';
import { loadScenario } from '../scenario/load.js';
import { localTaskOf, runLocal } from '../sweep/localBackend.js';
import { planSweep } from '../sweep/plan.js';
import { createSweepPool, type SweepPool } from '../sweep/pool.js';
import type { SweepPlan } from '../sweep/types.js';
import { runSimulation, shutdownWorkers } from '../workers/runSimulation.js';
import { cleanSample, noise } from './machineLoad.js';
import { benchOvercommitScale } from './scaleBench.js';

/**
 * `npm run bench`: the figures the foundation is judged by, measured in one run on this machine.
 * (a) raw xstate `actor.send` rate of a machine comparable to the pCPU machine; (b) the kernel's
 * delivered-event rate hosting that machine, and (b)/(a); (c) the RAP/TLB hot path; (d) wall
 * time and speedup of a 64-core bare-metal scenario on 1 and 2 workers; (e) a sweep of 200
 * short runs on 1 and 2 sweep threads; (f) the kernel's events/s with VMs against bare metal at
 * equal work per event. Timed samples wait for a quiet machine (see machineLoad.ts).
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

/** One `rapsim run`-like simulation (fresh worker threads when the count changes). */
async function benchScenario(
  file: string,
  workers: number,
  sets: string[] = [],
): Promise<{ wallMs: number; events: number; ops: number; digest: string }> {
  const s = loadScenario(file, { sets });
  const { value: r, ms } = await cleanSample(() => runSimulation(s, { workers }));
  const ops = collectMetrics(r.actors, r.topology.timing, r.simulatedPs).work.ops;
  return { wallMs: ms, events: r.events, ops, digest: r.traceDigest };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const root = resolve(import.meta.dirname, '../..');

/** `npm run bench -- e f` runs only the figures named (a, b and c come together). */
const only = new Set(process.argv.slice(2).map((a) => a.toLowerCase()));
const wanted = (...figures: string[]) => only.size === 0 || figures.some((f) => only.has(f));

async function benchKernelFigures(): Promise<void> {
  // Warm up the JIT on each path before measuring.
  benchRawSend(50_000);
  benchKernel(50_000);
  benchHotPath(2_000_000);
  const a = benchRawSend(200_000);
  const b = benchKernel(200_000);
  const c = benchHotPath(50_000_000);
  console.log(`(a) raw xstate actor.send, pCPU-like machine:   ${fmt(a)} events/s`);
  console.log(
    `(b) kernel-delivered events, same machine:       ${fmt(b)} events/s   (b)/(a) = ${(b / a).toFixed(2)}   target ≥ 0.70`,
  );
  console.log(`(c) RAP/TLB hot path (push/pop/look-up):        ${fmt(c)} ops/s      target ≥ 20 M`);
}

async function benchWorkers(): Promise<void> {
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
}

// ─── (e) sweeps (issue 5) ──────────────────────────────────────────────────────────────────────

/** A sweep of `runs` seeds of one scenario, planned as `rapsim sweep --seeds 1..runs` plans it. */
function seedPlan(file: string, runs: number): SweepPlan {
  const text = readFileSync(resolve(root, file), 'utf8');
  const seeds = Array.from({ length: runs }, (_, i) => i + 1);
  return planSweep({ rapsim: version, file, text, sets: [], vary: [], seeds, replayOf: () => '' });
}

/**
 * A whole sweep on `threads` sweep threads, started for it as the CLI starts them: wall time,
 * the process's CPU time (every thread), and the outcomes.
 */
async function timedSweep(plan: SweepPlan, threads: number) {
  const cpu0 = process.cpuUsage();
  const { value: outcomes, ms } = await cleanSample(() => runLocal(plan, { threads, version }));
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: ms, cpuMs: (cpu.user + cpu.system) / 1000, json: JSON.stringify(outcomes) };
}

/**
 * 1 and 2 sweep threads alternated, median of `rounds` (after one warm-up of the coordinator's
 * JIT).
 */
async function sweepSpeedup(plan: SweepPlan, rounds: number) {
  await timedSweep(plan, 2);
  const one: { wallMs: number; cpuMs: number }[] = [];
  const two: { wallMs: number; cpuMs: number }[] = [];
  let same = true;
  for (let i = 0; i < rounds; i++) {
    const a = await timedSweep(plan, 1);
    const b = await timedSweep(plan, 2);
    one.push(a);
    two.push(b);
    same &&= a.json === b.json;
  }
  const t1 = median(one.map((x) => x.wallMs));
  const t2 = median(two.map((x) => x.wallMs));
  const busy1 = median(one.map((x) => x.cpuMs / x.wallMs));
  const cpuRatio = median(two.map((x) => x.cpuMs)) / median(one.map((x) => x.cpuMs));
  return { t1, t2, speedup: t1 / t2, busy1, cpuRatio, same };
}

/**
 * The most two sweep threads can give on this machine: both already warm (no start, no JIT
 * warm-up), runs/s of two threads side by side over runs/s of one alone. Pools of 1 and 2
 * threads, alternated, median of 5.
 */
async function warmCeiling(plan: SweepPlan, warmRuns: number, runsPerThread: number): Promise<number> {
  const pools = [createSweepPool(1, version), createSweepPool(2, version)];
  let seed = 0;
  // As runLocal does: two tasks in flight per thread.
  const drive = async (pool: SweepPool, runs: number, threads: number) => {
    let left = runs;
    const lane = async () => {
      while (left-- > 0) await pool.run({ ...localTaskOf(plan, plan.runs[0]!), seed: ++seed });
    };
    await Promise.all(Array.from({ length: 2 * threads }, lane));
  };
  try {
    await drive(pools[0]!, warmRuns, 1);
    await drive(pools[1]!, 2 * warmRuns, 2);
    const rate: number[][] = [[], []];
    for (let i = 0; i < 5; i++) {
      for (const threads of [1, 2]) {
        const runs = threads * runsPerThread;
        const { ms } = await cleanSample(() => drive(pools[threads - 1]!, runs, threads));
        rate[threads - 1]!.push(runs / ms);
      }
    }
    return median(rate[1]!) / median(rate[0]!);
  } finally {
    await Promise.all(pools.map((p) => p.destroy()));
  }
}

/**
 * (e): `rapsim sweep` of 200 short runs on 1 and 2 sweep threads, threads started per sweep as
 * the CLI does, alternated, median of 5. The figure is `scenarios/bench/sweep-run.yaml`, seeds
 * 1..200 (runs of tens of ms, a study's size); the bare litmus (4 events a run) is shown too: a
 * sweep of it measures little but thread start and JIT warm-up. Then what bounds the speedup on
 * this machine: the cores one thread already keeps busy (V8 compiles and collects garbage on
 * other threads), the CPU time a second thread adds (its own start and warm-up), and the ceiling
 * of two warm threads.
 */
async function benchSweep(): Promise<void> {
  const main = await sweepSpeedup(seedPlan('scenarios/bench/sweep-run.yaml', 200), 5);
  const litmus = await sweepSpeedup(seedPlan('scenarios/bare-metal/litmus-stuffing-too-short.yaml', 200), 5);
  const ceiling = await warmCeiling(seedPlan('scenarios/bench/sweep-run.yaml', 1), 60, 40);
  console.log(
    `(e) sweep of 200 short runs (sweep-run.yaml, median of 5): --threads 1 ${main.t1.toFixed(0)} ms, --threads 2 ${main.t2.toFixed(0)} ms, speedup ${main.speedup.toFixed(2)}×   target ≥ 1.7×`,
  );
  console.log(
    `    litmus (4 events a run, start-up bound): --threads 1 ${litmus.t1.toFixed(0)} ms, --threads 2 ${litmus.t2.toFixed(0)} ms, speedup ${litmus.speedup.toFixed(2)}×`,
  );
  console.log(
    `    one sweep thread keeps ${main.busy1.toFixed(2)} cores busy; a second adds ${((main.cpuRatio - 1) * 100).toFixed(0)}% CPU time (its own start and JIT warm-up); two warm threads: ${ceiling.toFixed(2)}× one`,
  );
  console.log(`    outcomes ${main.same && litmus.same ? 'identical' : 'DIFFER'} across thread counts`);
}

// ─── (f) VM events (issue 3) ───────────────────────────────────────────────────────────────────

/**
 * (f): the kernel's events/s with VMs against bare metal, on the same 16-core machine, with
 * per-event work matched: `vm-16.yaml` (16 vCPUs, NPT off, linux-7.0: world switches dominate)
 * and `bare-metal-16.yaml` (the same eight processes on bare metal, their decisions 2.7× as
 * frequent), whose workload operations (CALL, RET, page access) per kernel event agree within a
 * few percent. Events/s only compares like with like when each event carries the same work:
 * bare-metal-64's events are mostly flush IPIs and acks (62 ops each), vm-16's 106. Both
 * scenarios on one worker thread, warmed up, alternated, median of 5. The last line puts the
 * VM's cost in world switches: vm-16 against the same guest workload run on bare metal.
 */
async function benchVm(): Promise<void> {
  const vmFile = resolve(root, 'scenarios/bench/vm-16.yaml');
  const bareFile = resolve(root, 'scenarios/bench/bare-metal-16.yaml');
  // bare-metal-16 with vm-16's guest decision rates: the guest's work without the world switches.
  const sameWork = ['hostProcesses.contextSwitch.every=10us', 'hostProcesses.globalFlush.every=20us'];
  for (let i = 0; i < 2; i++) {
    await benchScenario(vmFile, 1);
    await benchScenario(bareFile, 1);
  }
  const vm: Awaited<ReturnType<typeof benchScenario>>[] = [];
  const bare: Awaited<ReturnType<typeof benchScenario>>[] = [];
  const alone: Awaited<ReturnType<typeof benchScenario>>[] = [];
  for (let i = 0; i < 5; i++) {
    vm.push(await benchScenario(vmFile, 1));
    bare.push(await benchScenario(bareFile, 1));
    if (i < 3) alone.push(await benchScenario(bareFile, 1, sameWork));
  }
  await shutdownWorkers();
  const rate = (xs: typeof vm) => median(xs.map((r) => (r.events / r.wallMs) * 1000));
  const perEvent = (r: (typeof vm)[number]) => r.ops / r.events;
  const vmRate = rate(vm);
  const bareRate = rate(bare);
  const opsVm = perEvent(vm[0]!);
  const opsBare = perEvent(bare[0]!);
  const matched = Math.abs(opsVm / opsBare - 1) <= 0.1;
  console.log(
    `(f) VM vs bare metal, 16 cores, --workers 1, per-event work matched (median of 5): VM ${fmt(vmRate)} events/s, bare metal ${fmt(bareRate)} events/s: ratio ${(vmRate / bareRate).toFixed(2)}   target ≥ 0.80`,
  );
  console.log(
    `    workload ops per event: VM ${opsVm.toFixed(0)}, bare metal ${opsBare.toFixed(0)}${matched ? '' : '   NOT MATCHED (more than 10% apart): the ratio compares unlike events'}`,
  );
  const vmMs = median(vm.map((r) => r.wallMs));
  const aloneMs = median(alone.map((r) => r.wallMs));
  const extra = vm[0]!.events - alone[0]!.events;
  console.log(
    `    the VM's guest workload on bare metal: ${aloneMs.toFixed(0)} ms (${fmt(alone[0]!.events)} events) vs ${vmMs.toFixed(0)} ms in the VM (${fmt(vm[0]!.events)}): ${(((vmMs - aloneMs) / extra) * 1000).toFixed(0)} µs per world-switch event`,
  );
}

async function main(): Promise<void> {
  console.log('rapsim bench (one run on this machine)');
  if (wanted('a', 'b', 'c')) await benchKernelFigures();
  if (wanted('d')) await benchWorkers();
  if (wanted('e')) await benchSweep();
  if (wanted('f')) await benchVm();
  if (wanted('g')) await benchOvercommitScale();
  if (noise.retaken + noise.keptNoisy > 0) {
    console.log(
      `note: other processes used more than 10% of the machine during ${noise.retaken + noise.keptNoisy} sample(s); ${noise.retaken} retaken, ${noise.keptNoisy} kept after three retries`,
    );
  }
}

await main();
