import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { formatDuration, parseDuration, type Time } from '../actors/time.js';
import type { Report } from '../report/report.js';
import type { Scenario } from '../scenario/schema.js';
import { vmList } from '../workers/composeVms.js';
import type { RunResult } from '../workers/runSimulation.js';
import { describeActor, inferKinds } from './actors.js';
import { buildCharts } from './charts.js';
import { keptEvents } from './recorded.js';
import { buildTimeline } from './timeline.js';
import { chromeTrace, chromeTraceChunks } from './traceExport.js';

/** Events a run records for `--out` unless `--trace-limit` says otherwise. */
export const DEFAULT_TRACE_LIMIT = 1_000_000;

export interface TraceFlags {
  traceWindow?: string;
  traceLimit?: string;
  traceSample?: string;
}

/** What `run --out` records and how it thins it. */
export interface TraceSettings {
  record: { from: Time; to?: Time; limit: number };
  sampleEvery: number;
}

/**
 * Reads `--trace-window FROM..TO` (either side may be empty: `1ms..`, `..500us`), `--trace-limit N`
 * and `--trace-sample N`. They need `--out` (the trace is written there). `bad` makes the error
 * the CLI prints for bad input.
 */
export function traceSettings(
  flags: TraceFlags & { out?: string },
  bad: (message: string) => Error,
): TraceSettings | undefined {
  const given = (['traceWindow', 'traceLimit', 'traceSample'] as const).filter((k) => flags[k] !== undefined);
  if (!flags.out) {
    if (given.length > 0) {
      const flag = `--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      throw bad(`${flag}: expected --out DIR as well (the trace is written there), found no --out.`);
    }
    return undefined;
  }
  const record: TraceSettings['record'] = { from: 0, limit: DEFAULT_TRACE_LIMIT };
  if (flags.traceWindow !== undefined) {
    const m = /^\s*([^.\s]*)\s*\.\.\s*([^.\s]*)\s*$/.exec(flags.traceWindow);
    const time = (s: string): Time => {
      try {
        return parseDuration(/^\d+$/.test(s) ? Number(s) : s);
      } catch (err) {
        throw bad(
          `--trace-window: expected FROM..TO with durations such as 1ms..1.5ms, found "${flags.traceWindow}" (${(err as Error).message}).`,
        );
      }
    };
    if (!m || (!m[1] && !m[2])) {
      throw bad(
        `--trace-window: expected FROM..TO such as 1ms..1.5ms, 1ms.. or ..500us, found "${flags.traceWindow}".`,
      );
    }
    if (m[1]) record.from = time(m[1]);
    if (m[2]) record.to = time(m[2]);
    if (record.to !== undefined && record.to <= record.from) {
      throw bad(`--trace-window: expected FROM < TO, found "${flags.traceWindow}".`);
    }
  }
  const int = (flag: string, text: string): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) throw bad(`${flag}: expected an integer ≥ 1, found "${text}".`);
    return n;
  };
  if (flags.traceLimit !== undefined) record.limit = int('--trace-limit', flags.traceLimit);
  const sampleEvery = flags.traceSample !== undefined ? int('--trace-sample', flags.traceSample) : 1;
  return { record, sampleEvery };
}

/** What `run --out` wrote, for the summary's size note. */
export interface OutputNote {
  files: { name: string; bytes: number }[];
  recorded: number;
  kept: number;
  events: number;
  truncated: boolean;
  endPs: number;
  limit: number;
}

/**
 * Writes `trace.json` (Chrome Trace Event format) and `timeline.json` (the viewer's data) into
 * `dir`, beside the report the CLI has written. The trace must have been recorded
 * (`runSimulation(..., { trace })`).
 */
export async function writeRunOutputs(
  dir: string,
  x: { report: Report; result: RunResult; scenario: Scenario; sampleEvery: number },
): Promise<OutputNote> {
  const trace = x.result.trace;
  if (!trace) throw new Error('writeRunOutputs: the run recorded no trace');
  const vmNames = vmList(x.scenario).map((v) => v.vm.name);
  const actors = x.result.actors.map((a) => describeActor(a.index, a.id, vmNames));
  const labels = new Map<number, Set<string>>();
  for (const e of trace.entries) {
    const set = labels.get(e.dst) ?? new Set<string>();
    set.add(e.state);
    labels.set(e.dst, set);
  }
  inferKinds(actors, labels);
  const sampling = { every: x.sampleEvery };
  const kept = keptEvents(trace, sampling);
  const chrome = chromeTrace(x.report, actors, trace, sampling, kept);
  writeChunks(join(dir, 'trace.json'), chromeTraceChunks(chrome));
  const charts = await buildCharts([...new Set(actors.map((a) => a.kind))]);
  const timeline = buildTimeline({
    report: x.report,
    actors,
    trace,
    kept,
    sampleEvery: x.sampleEvery,
    charts,
    vmNames,
  });
  writeChunks(join(dir, 'timeline.json'), [JSON.stringify(timeline)]);
  const size = (name: string) => ({ name, bytes: statSync(join(dir, name)).size });
  return {
    files: [size('report.json'), size('trace.json'), size('timeline.json')],
    recorded: timeline.window.recorded,
    kept: timeline.window.kept,
    events: x.report.events,
    truncated: trace.truncated,
    endPs: timeline.window.endPs,
    limit: trace.limit,
  };
}

function writeChunks(path: string, chunks: Iterable<string>): void {
  const fd = openSync(path, 'w');
  try {
    for (const c of chunks) writeSync(fd, c);
  } finally {
    closeSync(fd);
  }
}

const mb = (n: number): string =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`;

/** The summary's lines about what `--out` wrote: sizes, what the trace keeps, how to see it. */
export function renderOutputNote(dir: string, n: OutputNote): string {
  const files = n.files.map((f) => `${f.name} (${mb(f.bytes)})`).join(', ');
  const lines = [`wrote ${dir}: ${files}`];
  const kept =
    n.kept === n.recorded
      ? `${n.kept.toLocaleString('en-US')} events`
      : `${n.kept.toLocaleString('en-US')} of ${n.recorded.toLocaleString('en-US')} recorded events (--trace-sample)`;
  lines.push(`trace: ${kept} of the run's ${n.events.toLocaleString('en-US')}`);
  if (n.truncated) {
    lines.push(
      `trace cut at ${formatDuration(n.endPs)}: the first ${n.limit.toLocaleString('en-US')} events only; use --trace-window FROM..TO, --trace-sample N or --trace-limit N`,
    );
  }
  if (n.files.some((f) => f.name === 'trace.json' && f.bytes > 200 * 1024 * 1024)) {
    lines.push('trace.json is large: --trace-window FROM..TO or --trace-sample N make it smaller');
  }
  lines.push(`see it: rapsim view ${dir}   (or open trace.json in https://ui.perfetto.dev)`);
  return lines.join('\n');
}
