import { ADVISORY, type Property } from '../check/violation.js';
import { stampReplay } from './runTask.js';
import type {
  FailedRun,
  PropertyTally,
  RunOutcome,
  SweepDocument,
  SweepPlan,
  SweepReport,
  ValueTally,
  VariantDocument,
  VariantSummary,
} from './types.js';

/** The lower median (nearest rank) of integers: an integer again, and deterministic. */
function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.ceil(s.length / 2) - 1]!;
}

/** The sample standard deviation (n − 1); null for fewer than two values. */
function sampleSd(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
}

/**
 * One row of the table: runs, failing and crashed seeds, violations by property, shootdown
 * latency, misprediction and underflow rates, RAP clears, and the simulated cost of stuffing and
 * mispredictions.
 */
export function summarize(seeds: readonly number[], outcomes: readonly RunOutcome[]): VariantSummary {
  const reports = outcomes.flatMap((o) => (o.exit === 3 ? [] : [o.report]));
  const violations: Partial<Record<Property, PropertyTally>> = {};
  for (const r of reports) {
    for (const [p, n] of Object.entries(r.violationCounts) as [Property, number][]) {
      if (n <= 0) continue;
      const t = violations[p] ?? { runs: 0, occurrences: 0, advisory: ADVISORY.has(p) };
      violations[p] = t;
      t.runs++;
      t.occurrences += n;
    }
  }
  const withShootdowns = reports.filter((r) => r.metrics.shootdowns.count > 0);
  const sum = (f: (r: SweepReport) => number) => reports.reduce((acc, r) => acc + f(r), 0);
  const perRun = (f: (r: SweepReport) => number) =>
    reports.length ? Math.round(sum(f) / reports.length) : 0;
  const returns = sum((r) => r.metrics.rap.returns);
  const mispredicted = sum((r) => r.metrics.rap.mispredicted);
  // Reports without these metrics (hand-built, or from before they existed) count as none.
  const underflows = sum((r) => r.metrics.rap.underflows ?? 0);
  const clears = new Map<string, number>();
  for (const r of reports) {
    for (const [cause, n] of Object.entries(r.metrics.rap.clears ?? {}))
      clears.set(cause, (clears.get(cause) ?? 0) + n);
  }
  const tenthPerRun = (n: number) => (reports.length ? Math.round((10 * n) / reports.length) / 10 : 0);
  return {
    runs: outcomes.length,
    failingSeeds: seeds.filter((_, i) => outcomes[i]!.exit !== 0),
    crashedSeeds: seeds.filter((_, i) => outcomes[i]!.exit === 3),
    violations,
    shootdowns: {
      count: sum((r) => r.metrics.shootdowns.count),
      p50Ns: median(withShootdowns.map((r) => r.metrics.shootdowns.latencyNs.p50)),
      p99Ns: median(withShootdowns.map((r) => r.metrics.shootdowns.latencyNs.p99)),
      interruptedShare: interruptedShare(withShootdowns),
    },
    returns,
    mispredicted,
    mispredictionRate: returns > 0 ? mispredicted / returns : null,
    underflows,
    underflowRate: returns > 0 ? underflows / returns : null,
    ...rateSpreads(reports),
    clearsPerRun: tenthPerRun([...clears.values()].reduce((a, b) => a + b, 0)),
    clearsPerRunByCause: Object.fromEntries(
      [...clears].sort(([a], [b]) => a.localeCompare(b)).map(([cause, n]) => [cause, tenthPerRun(n)]),
    ),
    clearRapVmrunsPerRun: reports.some((r) => (r.metrics.worldSwitches ?? 0) > 0)
      ? tenthPerRun(sum((r) => r.metrics.clearRapVmruns ?? 0))
      : null,
    costNsPerRun: {
      stuffing: perRun((r) => r.metrics.costNs.stuffing),
      mispredictions: perRun((r) => r.metrics.costNs.mispredictions),
      flushIpiHandlers: perRun((r) => r.metrics.costNs.flushIpiHandlers),
    },
    // Reports without these metrics (hand-built, or from before they existed) count as none.
    workOpsPerSecond: median(reports.map((r) => r.metrics.work?.opsPerSecond ?? 0)),
    stealShare: stealShare(reports),
  };
}

/**
 * The sweep document from the plan and the outcomes indexed like `plan.runs` (undefined: the
 * run did not finish). Depends only on the plan and the outcomes — never on completion order,
 * threads or machines — so the local and distributed backends print the same bytes.
 *
 * @example
 * const doc = assemble(plan, outcomes, { interrupted: false });
 * doc.variants[0].reports[0].replay // 'rapsim run scenarios/... --seed 1 --set ...'
 */
export function assemble(
  plan: SweepPlan,
  outcomes: readonly (RunOutcome | undefined)[],
  o: { interrupted: boolean },
): SweepDocument {
  const variants: VariantDocument[] = plan.variants.map((set) => ({
    set,
    seeds: [],
    summary: summarize([], []),
    reports: [],
  }));
  const byVariant: RunOutcome[][] = plan.variants.map(() => []);
  for (const run of plan.runs) {
    const got = outcomes[run.index];
    if (!got) continue;
    const outcome = stampReplay(got, run.replay);
    variants[run.variant]!.seeds.push(run.seed);
    variants[run.variant]!.reports.push(outcome.exit === 3 ? outcome.failed : outcome.report);
    byVariant[run.variant]!.push(outcome);
  }
  for (const [i, v] of variants.entries()) v.summary = summarize(v.seeds, byVariant[i]!);
  const finished = byVariant.flat();
  const crashed = finished.filter((x) => x.exit === 3).length;
  const failed = finished.filter((x) => x.exit !== 0).length;
  return {
    rapsim: plan.rapsim,
    scenario: plan.scenario,
    file: plan.file,
    vary: plan.vary,
    seeds: plan.seeds,
    runs: { planned: plan.runs.length, finished: finished.length, failed, crashed },
    interrupted: o.interrupted,
    exitCode: crashed > 0 ? 3 : failed > 0 ? 1 : 0,
    variants,
    byValue: tallyByValue(plan.vary, variants),
  };
}

/**
 * For every varied key and each of its values: the variants with that value, those whose runs
 * violated a non-advisory property, and those with a failing seed (see {@link ValueTally}).
 */
function tallyByValue(
  vary: SweepPlan['vary'],
  variants: readonly VariantDocument[],
): Record<string, ValueTally[]> {
  const out: Record<string, ValueTally[]> = {};
  for (const [key, values] of Object.entries(vary)) {
    out[key] = values.map((value) => {
      const having = variants.filter((v) => v.set[key] === value);
      return {
        value,
        variants: having.length,
        violating: having.filter((v) => Object.values(v.summary.violations).some((t) => !t.advisory)).length,
        failing: having.filter((v) => v.summary.failingSeeds.length > 0).length,
      };
    });
  }
  return out;
}

/** Whether an entry of a variant's `reports` is a crashed run. */
export function isFailedRun(r: SweepReport | FailedRun): r is FailedRun {
  return 'error' in r;
}

/** {@link VariantSummary.mispredictionRateSd} and `underflowRateSd`, over the runs with returns. */
function rateSpreads(
  reports: readonly SweepReport[],
): Pick<VariantSummary, 'mispredictionRateSd' | 'underflowRateSd'> {
  const withReturns = reports.filter((r) => r.metrics.rap.returns > 0);
  const rate = (f: (r: SweepReport) => number) => withReturns.map((r) => f(r) / r.metrics.rap.returns);
  return {
    mispredictionRateSd: sampleSd(rate((r) => r.metrics.rap.mispredicted)),
    underflowRateSd: sampleSd(rate((r) => r.metrics.rap.underflows ?? 0)),
  };
}

/** Steal over steal + run, summed over every vCPU of every run (null when no run had a VM). */
/**
 * Targets interrupted over targets, summed over every shootdown group of every run (a group's
 * mean times its count). Reports from before `interruptedMean` existed make it unknown.
 */
function interruptedShare(reports: readonly SweepReport[]): number | null {
  let interrupted = 0;
  let targets = 0;
  for (const r of reports) {
    for (const g of r.metrics.shootdowns.byTargets ?? []) {
      if (g.interruptedMean === undefined) return null;
      interrupted += g.interruptedMean * g.count;
      targets += g.targets * g.count;
    }
  }
  return targets > 0 ? interrupted / targets : null;
}

function stealShare(reports: readonly SweepReport[]): number | null {
  let steal = 0;
  let run = 0;
  for (const r of reports) {
    for (const v of r.metrics.scheduler?.vcpus ?? []) {
      steal += v.stealNs;
      run += v.runNs;
    }
  }
  return steal + run > 0 ? steal / (steal + run) : null;
}
