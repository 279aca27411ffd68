import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { SimulationError } from '../actors/simulationError.js';
import { TimingKeyError, timingRows } from '../hw/timing.js';
import { buildReport, exitCodeOf } from '../report/report.js';
import { renderSummary } from '../report/summary.js';
import { renderTimingTable } from '../report/timingTable.js';
import { ScenarioError } from '../scenario/errors.js';
import { loadScenario } from '../scenario/load.js';
import { parseOverride } from '../scenario/overrides.js';
import type { Scenario } from '../scenario/schema.js';
import { runIsSweep } from '../sweep/plan.js';
import {
  type OutputNote,
  renderOutputNote,
  type TraceFlags,
  type TraceSettings,
  traceSettings,
  writeRunOutputs,
} from '../viz/runOutputs.js';
import { buildTopology, placeHostProcesses, placeVcpus } from '../workers/compose.js';
import { runSimulation, shutdownWorkers } from '../workers/runSimulation.js';
import { parseInteger, parseTimeFlag, prepareOutDir, UsageError } from './flags.js';
import { replayCommand } from './replay.js';
import { resultsVersion } from './version.js';

export interface RunFlags extends TraceFlags {
  seed?: string;
  workers?: string;
  until?: string;
  set: string[];
  json?: boolean;
  out?: string;
  quiet?: boolean;
  /** Print the timing table in force (defaults and this scenario's overrides) and do not run. */
  latency?: boolean;
  /** The sweep table's columns, when the scenario makes `run` a sweep. */
  columns?: string;
  /** Where a sweep keeps finished runs, when the scenario makes `run` a sweep. */
  cache?: string;
}

export { UsageError };

/**
 * `rapsim run <scenario.yaml>`: load and validate, simulate, judge, report. Returns the exit
 * code (0 clean, 1 violation or failed expect, 2 bad input, 3 internal error).
 */
export async function runCommand(
  file: string,
  flags: RunFlags,
  io: { out: NodeJS.WriteStream; err: NodeJS.WriteStream },
): Promise<number> {
  let scenario: Scenario;
  let workers: number;
  let trace: TraceSettings | undefined;
  try {
    scenario = loadScenario(file, { sets: flags.set });
    // `matrix:` keys not pinned by --set, or `seeds:` without --seed: `run` sweeps (interface.md).
    if (runIsSweep(scenario, flags.set, flags.seed !== undefined)) {
      return (await import('./sweepCommand.js')).sweepFromRun(file, flags, io);
    }
    for (const [flag, given] of [
      ['--columns', flags.columns],
      ['--cache', flags.cache],
    ] as const) {
      if (given !== undefined) {
        throw new UsageError(
          `${flag}: only for a sweep, but this scenario is one simulation (no matrix: keys left unpinned, no seeds:).`,
        );
      }
    }
    refuseFlagAndSet(flags);
    if (flags.seed !== undefined) scenario = { ...scenario, seed: parseInteger('--seed', flags.seed, 0) };
    if (flags.until !== undefined) scenario = { ...scenario, until: parseTimeFlag('--until', flags.until) };
    workers = flags.workers !== undefined ? parseInteger('--workers', flags.workers, 1) : scenario.workers;
    checkModelled(file, scenario);
    const topology = buildTopology(scenario, workers);
    if (flags.latency) {
      const rows = timingRows(topology.timing);
      io.out.write(flags.json ? `${JSON.stringify(rows, null, 2)}\n` : `${renderTimingTable(rows)}\n`);
      return 0;
    }
    if (flags.out) prepareOutDir(flags.out);
    trace = traceSettings(flags, (message) => new UsageError(message));
  } catch (err) {
    return badInput(err, file, io.err);
  }
  const replay = replayCommand(file, { seed: scenario.seed, until: flags.until, sets: flags.set });
  const progress = startProgress(io.err, !flags.quiet && !flags.json);
  try {
    const result = await runSimulation(scenario, {
      workers,
      onProgress: progress.update,
      ...(trace ? { trace: trace.record } : {}),
    });
    progress.stop();
    const report = buildReport(scenario, result, { version: resultsVersion(), workers, replay });
    if (flags.out) {
      writeFileSync(join(flags.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    }
    // trace.json and the viewer's files (issue 6).
    let note: OutputNote | undefined;
    if (flags.out && trace) {
      note = await writeRunOutputs(flags.out, { report, result, scenario, sampleEvery: trace.sampleEvery });
    }
    if (flags.json) io.out.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (!flags.quiet) {
      io.out.write(`${renderSummary(report)}\n`);
      if (note && flags.out) io.out.write(`\n${renderOutputNote(flags.out, note)}\n`);
    }
    return exitCodeOf(report);
  } catch (err) {
    progress.stop();
    if (err instanceof SimulationError) {
      io.err.write(`rapsim: internal error in ${err.message}\nreplay: ${replay}\n`);
      return 3;
    }
    const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
    io.err.write(`rapsim: internal error: ${msg}\nreplay: ${replay}\n`);
    return 3;
  } finally {
    await shutdownWorkers();
  }
}

/**
 * `--seed N` with `--set seed=M` (or `--until` with `--set until=`): the flag would silently win,
 * so the pair is refused and the user says which one is meant.
 */
function refuseFlagAndSet(flags: RunFlags): void {
  for (const [key, flag, given] of [
    ['seed', '--seed', flags.seed],
    ['until', '--until', flags.until],
  ] as const) {
    const set = flags.set.find((s) => parseOverride(s).path.join('.') === key);
    if (given !== undefined && set) {
      throw new UsageError(`${flag}: also set by --set ${set}; give one of them (found both).`);
    }
  }
}

/**
 * Scenario features whose models are not written yet are refused, not faked. (`matrix:` and
 * `seeds:` are not refused: `run` hands such a scenario to the sweep, which calls this per variant.)
 */
export function checkModelled(file: string, s: Scenario): void {
  s.vms.forEach((vm, v) => {
    const refuse = (path: string, what: string, found: string): never => {
      throw new ScenarioError({
        file,
        path: `vms.${v}.${path}`,
        expected: `${what} (not modelled yet)`,
        found,
      });
    };
    // An L2's shootdowns go through its L1's KVM (IPIs, or PV TLB flush deferred by L1): an L1
    // that offers Hyper-V's enlightened flush to its L2 is not modelled.
    for (const [j, l2] of (vm.nested?.vms ?? []).entries()) {
      if (l2.hypervTlbFlush) {
        refuse(
          `nested.vms.${j}.hypervTlbFlush`,
          "false: Hyper-V's enlightened flush for an L2 guest",
          'true',
        );
      }
    }
  });
  // Where the vCPUs land, placed once for both checks of what shares their cores.
  const vmCores = new Set(placeVcpus(s).map((p) => p.core));
  checkHostTasks(file, s, vmCores);
  checkHostProcessesBesideVms(file, s, vmCores);
}

/**
 * Beside VMs, `hostProcesses` run only on the cores without vCPUs (compose.ts): a process whose
 * span has none, or a script for a vCPU core, would silently never run, so they are refused.
 */
function checkHostProcessesBesideVms(file: string, s: Scenario, vmCores: ReadonlySet<number>): void {
  if (s.vms.length === 0 || s.hostProcesses.count === 0) return;
  const free = Array.from({ length: s.hardware.cores }, (_, c) => c).filter((c) => !vmCores.has(c));
  const { coresOf } = placeHostProcesses(s, vmCores);
  const stranded = coresOf.findIndex((cores) => cores.length === 0);
  if (stranded >= 0) {
    throw new ScenarioError({
      file,
      path: s.hostProcesses.threadsPerProcess.length
        ? 'hostProcesses.threadsPerProcess'
        : 'hostProcesses.count',
      expected: free.length
        ? `every host process spanning a core without vCPUs (beside VMs they run only there: ${free.join(', ')})`
        : 'no host processes, or a core without vCPUs for them (beside VMs they run only there; every core runs vCPUs)',
      found: `process ${stranded} on cores that all run vCPUs`,
    });
  }
  for (const key of Object.keys(s.hostProcesses.script)) {
    if (vmCores.has(Number(key))) {
      throw new ScenarioError({
        file,
        path: `hostProcesses.script.${key}`,
        expected: `a core without vCPUs (${free.join(', ') || 'none here'}): beside VMs host processes run only there`,
        found: `core ${key}, which runs vCPUs`,
      });
    }
  }
}

/**
 * Host tasks share pCPUs with vCPU threads; a core without vCPUs is a bare-metal core, whose host
 * runs `hostProcesses` instead (a task there would be silently idle, so it is refused).
 */
function checkHostTasks(file: string, s: Scenario, vmCores: ReadonlySet<number>): void {
  if (s.host.tasks.length === 0) return;
  if (s.vms.length === 0) {
    throw new ScenarioError({
      file,
      path: 'host.tasks',
      expected: 'VMs whose vCPU threads the tasks share pCPUs with (bare-metal hosts run hostProcesses)',
      found: `${s.host.tasks.length} task(s) and no VM`,
    });
  }
  s.host.tasks.forEach((t, i) => {
    (t.cores ?? []).forEach((c, j) => {
      if (c < s.hardware.cores && vmCores.has(c)) return;
      throw new ScenarioError({
        file,
        path: `host.tasks.${i}.cores.${j}`,
        expected:
          c < s.hardware.cores
            ? `a core that runs vCPUs (${[...vmCores].sort((a, b) => a - b).join(', ')}); core ${c} runs only hostProcesses`
            : `a core index below ${s.hardware.cores}`,
        found: String(c),
      });
    });
  });
}

function badInput(err: unknown, file: string, stderr: NodeJS.WriteStream): number {
  if (err instanceof ScenarioError || err instanceof UsageError) {
    stderr.write(`rapsim: ${err.message}\n`);
    return 2;
  }
  if (err instanceof TimingKeyError) {
    stderr.write(`rapsim: ${file}: hardware.latency / host.latency: ${err.message}.\n`);
    return 2;
  }
  if (err instanceof Error) {
    stderr.write(`rapsim: ${file}: ${err.message}\n`);
    return 2;
  }
  stderr.write(`rapsim: ${file}: ${String(err)}\n`);
  return 2;
}

/** A progress bar on a terminal, shown only for runs that last more than a second. */
function startProgress(stream: NodeJS.WriteStream, enabled: boolean) {
  const startedAt = performance.now();
  let bar: cliProgress.SingleBar | undefined;
  const on = enabled && stream.isTTY === true;
  return {
    update: (sim: number, until: number, events: number) => {
      if (!on) return;
      if (!bar && performance.now() - startedAt > 1000) {
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: 'simulating [{bar}] {percentage}% | {events} events',
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(until, 0, { events: 0 });
      }
      bar?.update(sim, { events: events.toLocaleString('en-US') });
    },
    stop: () => {
      bar?.stop();
      bar = undefined;
    },
  };
}
