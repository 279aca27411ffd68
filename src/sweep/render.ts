import { formatDuration, NS } from '../actors/time.js';
import type { Property } from '../check/violation.js';
import { exitCodeOf } from '../report/report.js';
import type { MatrixValue } from '../scenario/sweep.js';
import { isFailedRun } from './aggregate.js';
import { SWEEP_COLUMN_NAMES, type SweepColumnName } from './columnNames.js';
import type { FailedRun, PropertyTally, SweepDocument, VariantSummary } from './types.js';

const fmt = (n: number): string => n.toLocaleString('en-US');
const ns = (n: number): string => (n === 0 ? '0' : formatDuration(n * NS));
const value = (v: MatrixValue): string => (typeof v === 'string' ? v : String(v));

/**
 * `rap-promised-clear 3/4 ×37/run` per property that occurred: the runs it occurred in, then its
 * uses per run (mean over all the variant's runs). The count matters beside the runs: two spec
 * readings can both break a promise in every run and still differ by 3× in how often a RET
 * consumes an entry it was promised was gone. Advisory properties are marked with `(adv)`.
 */
export function violationsCell(s: VariantSummary): string {
  const parts = (Object.entries(s.violations) as [Property, PropertyTally][]).map(
    ([p, t]) => `${p}${t.advisory ? ' (adv)' : ''} ${t.runs}/${s.runs} ×${perRun(t.occurrences, s.runs)}/run`,
  );
  return parts.length ? parts.join(', ') : 'none';
}

/** A mean per run: whole numbers from 10 up, one decimal below, one significant digit under 0.1. */
function perRun(total: number, runs: number): string {
  const mean = total / runs;
  if (mean >= 10) return fmt(Math.round(mean));
  return mean >= 0.1 ? mean.toFixed(1) : mean.toPrecision(1);
}

/** Pads cells into aligned columns; `right` columns are right-aligned (numbers). */
export function textTable(header: string[], rows: string[][], right: ReadonlySet<number>): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((x, c) => (right.has(c) ? x.padStart(widths[c]!) : x.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)];
}

function errorLine(f: FailedRun): string {
  return `${f.error.kind === 'event-cap' ? 'event cap reached' : 'internal error'} — ${f.error.message}`;
}

/** `2.12% ±0.04`: a rate and, over several seeds, its standard deviation in percentage points. */
function rateCell(rate: number | null, sd: number | null): string {
  if (rate === null) return '–';
  return `${(100 * rate).toFixed(2)}%${sd === null ? '' : ` ±${(100 * sd).toFixed(2)}`}`;
}

/** A column of the summary table: its `--columns` name, its header, and its cell per variant. */
interface SweepColumn {
  name: SweepColumnName;
  header: string;
  /** Right-aligned (a number). */
  numeric: boolean;
  /** Shown even when no variant measured it (`–` in every row). */
  always?: boolean;
  cell: (s: VariantSummary) => string;
}

/** Every column after the varied keys, in table order. */
const COLUMNS: readonly SweepColumn[] = [
  { name: 'runs', header: 'runs', numeric: true, always: true, cell: (s) => fmt(s.runs) },
  {
    name: 'failing',
    header: 'failing',
    numeric: true,
    always: true,
    cell: (s) =>
      s.failingSeeds.length
        ? `${s.failingSeeds.length}${s.crashedSeeds.length ? ` (${s.crashedSeeds.length} crashed)` : ''}`
        : '0',
  },
  {
    name: 'violations',
    header: 'violations (runs, uses/run)',
    numeric: false,
    always: true,
    cell: violationsCell,
  },
  {
    name: 'p50',
    header: 'shootdown p50',
    numeric: true,
    cell: (s) => (s.shootdowns.count ? ns(s.shootdowns.p50Ns) : '–'),
  },
  {
    name: 'p99',
    header: 'p99',
    numeric: true,
    cell: (s) => (s.shootdowns.count ? ns(s.shootdowns.p99Ns) : '–'),
  },
  {
    name: 'interrupted',
    header: 'interrupted',
    numeric: true,
    cell: (s) =>
      s.shootdowns.interruptedShare === null ? '–' : `${(100 * s.shootdowns.interruptedShare).toFixed(0)}%`,
  },
  {
    name: 'mispredicted',
    header: 'mispredicted',
    numeric: true,
    cell: (s) => rateCell(s.mispredictionRate, s.mispredictionRateSd),
  },
  {
    name: 'underflowed',
    header: 'underflowed',
    numeric: true,
    cell: (s) => rateCell(s.underflowRate, s.underflowRateSd),
  },
  { name: 'clears', header: 'clears/run', numeric: true, cell: (s) => fmt(s.clearsPerRun) },
  {
    name: 'clear-rap',
    header: 'CLEAR_RAP/run',
    numeric: true,
    cell: (s) => (s.clearRapVmrunsPerRun === null ? '–' : fmt(s.clearRapVmrunsPerRun)),
  },
  { name: 'stuffing', header: 'stuffing/run', numeric: true, cell: (s) => ns(s.costNsPerRun.stuffing) },
  {
    name: 'mispredict-cost',
    header: 'mispredict cost/run',
    numeric: true,
    cell: (s) => ns(s.costNsPerRun.mispredictions),
  },
  {
    name: 'work',
    header: 'work/s',
    numeric: true,
    cell: (s) => (s.workOpsPerSecond ? `${(s.workOpsPerSecond / 1e6).toFixed(1)} M` : '–'),
  },
  {
    name: 'steal',
    header: 'steal',
    numeric: true,
    cell: (s) => (s.stealShare === null ? '–' : `${(100 * s.stealShare).toFixed(1)}%`),
  },
];

/**
 * `--columns a,b,c`: the table's columns in the order given (the varied keys always come first).
 * Throws a one-line message naming the unknown or repeated name and every name there is.
 *
 * @example
 * parseSweepColumns('violations,clear-rap,underflowed') // ['violations', 'clear-rap', 'underflowed']
 */
export function parseSweepColumns(text: string): SweepColumnName[] {
  const names = text.split(',').map((x) => x.trim().toLowerCase());
  const known: readonly string[] = SWEEP_COLUMN_NAMES;
  for (const [i, n] of names.entries()) {
    if (!known.includes(n)) {
      throw new Error(
        `expected column names from ${SWEEP_COLUMN_NAMES.join(', ')} (comma-separated), found "${n || text}"`,
      );
    }
    if (names.indexOf(n) !== i) throw new Error(`"${n}" is named twice`);
  }
  return names as SweepColumnName[];
}

/**
 * The readable result of a sweep: one row per variant (the varied values, runs, failing seeds,
 * violations by property, shootdown p50/p99, misprediction and underflow rates, clears, stuffing
 * and misprediction cost per run, work and steal), then every failing seed with what failed and
 * the command that replays it. `columns` (names of {@link SWEEP_COLUMN_NAMES}) picks and orders
 * the columns after the varied keys; without it every column that some variant measured is shown.
 */
export function renderSweep(
  doc: SweepDocument,
  o: { wallMs?: number; threads?: string; columns?: readonly string[] | undefined } = {},
): string {
  const keys = Object.keys(doc.vary);
  const out: string[] = [];
  const shape = `${fmt(doc.variants.length)} variant(s) × ${fmt(doc.seeds.length)} seed(s) = ${fmt(doc.runs.planned)} run(s)`;
  const how = [o.threads, o.wallMs !== undefined ? `${(o.wallMs / 1000).toFixed(1)} s` : '']
    .filter(Boolean)
    .join(', ');
  out.push(
    `rapsim ${doc.rapsim} · sweep of ${doc.scenario} (${doc.file}) · ${shape}${how ? ` · ${how}` : ''}`,
  );
  out.push(`seeds: ${seedList(doc.seeds)}`);
  if (doc.interrupted) {
    out.push(
      `interrupted: ${fmt(doc.runs.finished)} of ${fmt(doc.runs.planned)} run(s) finished; rows show those`,
    );
  }
  out.push('');
  const cells = COLUMNS.map((c) => doc.variants.map((v) => c.cell(v.summary)));
  // Asked-for columns are shown as asked. Otherwise a measurement no variant has (no shootdowns,
  // no VMs: '–' in every row) is left out of the text table, which is wide enough without it;
  // the JSON and CSV keep every column.
  const measured = (i: number) =>
    COLUMNS[i]!.always || cells[i]!.length === 0 || cells[i]!.some((x) => x !== '–');
  const shown = o.columns
    ? o.columns.map((n) => COLUMNS.findIndex((c) => c.name === n))
    : COLUMNS.map((_, i) => i).filter(measured);
  const header = [...(keys.length ? keys : ['variant']), ...shown.map((i) => COLUMNS[i]!.header)];
  const rows = doc.variants.map((v, r) => [
    ...(keys.length ? keys.map((k) => value(v.set[k]!)) : ['(scenario as written)']),
    ...shown.map((i) => cells[i]![r]!),
  ]);
  const first = keys.length || 1;
  const right = new Set(shown.flatMap((i, j) => (COLUMNS[i]!.numeric ? [first + j] : [])));
  out.push(...textTable(header, rows, right));
  out.push('');
  if (keys.length >= 2 && doc.byValue) out.push(...byValueLines(doc.byValue), '');
  const omitted = o.columns ? [] : COLUMNS.filter((_, i) => !measured(i)).map((c) => c.header);
  const has = (...names: SweepColumnName[]) => shown.some((i) => names.includes(COLUMNS[i]!.name));
  const notes = [
    ...(has('p50', 'p99') ? ['shootdown p50/p99: median over the seeds of each run’s percentile'] : []),
    ...(has('interrupted')
      ? ['interrupted: of the shootdowns’ targets, the share they interrupted (the rest skipped or deferred)']
      : []),
    ...(has('stuffing', 'mispredict-cost') ? ['costs: simulated time per run'] : []),
  ];
  const footer = [
    notes.length ? `${notes.join('; ')}.` : '',
    omitted.length ? `Not measured in any run: ${omitted.join(', ')}.` : '',
  ]
    .filter(Boolean)
    .join(' ');
  if (footer) out.push(footer);
  const failing = failingRuns(doc);
  if (failing.length === 0) out.push(doc.runs.finished ? 'failing seeds: none' : '');
  else {
    out.push(`failing seeds (${fmt(doc.runs.failed)}), each with the command that replays it:`);
    out.push(...failing);
  }
  return out.join('\n').trimEnd();
}

/**
 * With two or more varied keys, where the broken promises lie, one line per key:
 * `host.policy    hide 0/4 · naive 4/4 · v6 2/4` (variants with a non-advisory violation over
 * variants with the value; `, 1 failing` where some have failing seeds).
 */
function byValueLines(byValue: SweepDocument['byValue']): string[] {
  const keys = Object.keys(byValue);
  const width = Math.max(...keys.map((k) => k.length));
  return [
    'promises broken, by value (variants with a violation / variants with the value):',
    ...keys.map(
      (k) =>
        `  ${k.padEnd(width)}  ${byValue[k]!.map(
          (t) => `${value(t.value)} ${t.violating}/${t.variants}${t.failing ? `, ${t.failing} failing` : ''}`,
        ).join(' · ')}`,
    ),
  ];
}

/** `1..4` for a contiguous range, else the list. */
function seedList(seeds: readonly number[]): string {
  const contiguous = seeds.every((s, i) => i === 0 || s === seeds[i - 1]! + 1);
  return contiguous && seeds.length > 2 ? `${seeds[0]}..${seeds[seeds.length - 1]}` : seeds.join(', ');
}

function failingRuns(doc: SweepDocument): string[] {
  const out: string[] = [];
  for (const v of doc.variants) {
    const label = Object.entries(v.set)
      .map(([k, x]) => `${k}=${value(x)}`)
      .join(' ');
    for (const r of v.reports) {
      const prefix = `  ${label ? `${label} ` : ''}seed ${r.seed}: `;
      if (isFailedRun(r)) {
        out.push(`${prefix}${errorLine(r)}`);
      } else {
        if (exitCodeOf({ ...r, wallMs: 0, workers: 1 }) === 0) continue;
        const why = [
          ...(Object.entries(r.violationCounts) as [Property, number][])
            .filter(([p, n]) => n > 0 && r.failing.includes(p))
            .map(([p, n]) => `${p} ×${fmt(n)}`),
          ...(r.expect && !r.expect.ok ? [`expect: ${r.expect.problems.join('; ')}`] : []),
        ];
        out.push(`${prefix}${why.join(', ')}`);
      }
      out.push(`    ${r.replay}`);
    }
  }
  return out;
}
