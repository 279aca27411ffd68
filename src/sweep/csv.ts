import { PROPERTIES } from '../check/violation.js';
import { exitCodeOf } from '../report/report.js';
import { isFailedRun } from './aggregate.js';
import type { SweepDocument } from './types.js';

type Cell = string | number | boolean | null;

/** One RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
function field(c: Cell): string {
  const s = c === null ? '' : String(c);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function csv(rows: Cell[][]): string {
  return `${rows.map((r) => r.map(field).join(',')).join('\r\n')}\r\n`;
}

/**
 * `variants.csv`: one row per variant, the summary table's columns in full (violations as runs
 * and uses per property, times in ns, failing seeds space-separated).
 */
export function variantsCsv(doc: SweepDocument): string {
  const keys = Object.keys(doc.vary);
  const header: Cell[] = [...keys, 'runs', 'failing_runs', 'crashed_runs'];
  for (const p of PROPERTIES) header.push(`${p}_runs`, `${p}_uses`);
  header.push(
    'shootdowns',
    'shootdown_p50_ns',
    'shootdown_p99_ns',
    'shootdown_interrupted_share',
    'returns',
    'mispredicted',
    'misprediction_rate',
    'misprediction_rate_sd',
    'underflows',
    'underflow_rate',
    'underflow_rate_sd',
    'clears_per_run',
    'clear_rap_vmruns_per_run',
    'stuffing_ns_per_run',
    'mispredictions_ns_per_run',
    'flush_ipi_handlers_ns_per_run',
    'work_ops_per_second',
    'steal_share',
    'failing_seeds',
  );
  const rows = doc.variants.map((v) => {
    const s = v.summary;
    const row: Cell[] = [
      ...keys.map((k) => v.set[k] ?? null),
      s.runs,
      s.failingSeeds.length,
      s.crashedSeeds.length,
    ];
    for (const p of PROPERTIES) row.push(s.violations[p]?.runs ?? 0, s.violations[p]?.occurrences ?? 0);
    row.push(
      s.shootdowns.count,
      s.shootdowns.p50Ns,
      s.shootdowns.p99Ns,
      s.shootdowns.interruptedShare,
      s.returns,
      s.mispredicted,
      s.mispredictionRate,
      s.mispredictionRateSd,
      s.underflows,
      s.underflowRate,
      s.underflowRateSd,
      s.clearsPerRun,
      s.clearRapVmrunsPerRun,
      s.costNsPerRun.stuffing,
      s.costNsPerRun.mispredictions,
      s.costNsPerRun.flushIpiHandlers,
      s.workOpsPerSecond,
      s.stealShare,
      s.failingSeeds.join(' '),
    );
    return row;
  });
  return csv([header, ...rows]);
}

/** `runs.csv`: one row per finished run, with its outcome, key figures and replay command. */
export function runsCsv(doc: SweepDocument): string {
  const keys = Object.keys(doc.vary);
  const header: Cell[] = [...keys, 'seed', 'outcome', ...PROPERTIES];
  header.push(
    'events',
    'simulated_ns',
    'returns',
    'mispredicted',
    'underflows',
    'rap_clears',
    'clear_rap_vmruns',
    'stuffing_calls',
    'shootdowns',
    'shootdown_p50_ns',
    'shootdown_p99_ns',
    'trace_digest',
    'error',
    'replay',
  );
  const rows: Cell[][] = [];
  for (const v of doc.variants) {
    const set = keys.map((k) => v.set[k] ?? null);
    for (const r of v.reports) {
      if (isFailedRun(r)) {
        rows.push([
          ...set,
          r.seed,
          r.error.kind,
          ...PROPERTIES.map(() => null),
          ...Array.from({ length: 12 }, () => null),
          r.error.message,
          r.replay,
        ]);
        continue;
      }
      const m = r.metrics;
      const failed = exitCodeOf({ ...r, wallMs: 0, workers: 1 }) !== 0;
      rows.push([
        ...set,
        r.seed,
        failed ? 'failed' : 'ok',
        ...PROPERTIES.map((p) => r.violationCounts[p] ?? 0),
        r.events,
        r.simulatedNs,
        m.rap.returns,
        m.rap.mispredicted,
        m.rap.underflows ?? 0,
        Object.values(m.rap.clears ?? {}).reduce((a, b) => a + b, 0),
        m.worldSwitches ? m.clearRapVmruns : null,
        m.rap.stuffingCalls,
        m.shootdowns.count,
        m.shootdowns.latencyNs.p50,
        m.shootdowns.latencyNs.p99,
        r.traceDigest,
        null,
        r.replay,
      ]);
    }
  }
  return csv([header, ...rows]);
}
