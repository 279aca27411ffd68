import type { Property } from '../check/violation.js';
import type { Report } from '../report/report.js';
import type { Scenario } from '../scenario/schema.js';
import type { MatrixValue } from '../scenario/sweep.js';

/**
 * The public types of the sweep layer: a plan (variants × seeds, each run with its replay
 * command), what one run produced, and the sweep document `--json` prints (interface.md:
 * `{ "variants": [ { "set": {...}, "seeds": [...], "reports": [...] } ] }`).
 */

/** One point of the cross product: the value of every varied key, in key order. */
export type VariantSet = Record<string, MatrixValue>;

/** One simulation of the sweep. */
export interface PlannedRun {
  /** Position in {@link SweepPlan.runs}: variant-major, then seed order. */
  index: number;
  variant: number;
  seed: number;
  /** Every `--set` the run needs: the user's, then the variant's (`key=value`, YAML scalars). */
  sets: string[];
  /** Deterministic id: sha256 of rapsim version, scenario text, sets, seed and until. */
  id: string;
  /** The exact `rapsim run ...` command that replays this run alone. */
  replay: string;
}

/** Everything needed to run, and to judge, a sweep; plain data (it travels in BullMQ jobs). */
export interface SweepPlan {
  rapsim: string;
  /** The scenario file as the user named it (messages and replay commands). */
  file: string;
  /** The scenario's `name`. */
  scenario: string;
  /** The scenario file's text: workers parse it themselves, so the file need not be shared. */
  text: string;
  /** `--until` as given (kept for replay commands), and in picoseconds. */
  until?: { text: string; ps: number };
  /** The varied keys and their values, in cross-product order (first key varies slowest). */
  vary: Record<string, MatrixValue[]>;
  variants: VariantSet[];
  seeds: number[];
  runs: PlannedRun[];
}

/** What one simulation needs; the payload of a piscina task and of a BullMQ job. */
export interface RunTask {
  rapsim: string;
  text: string;
  file: string;
  sets: string[];
  seed: number;
  untilPs?: number;
}

/**
 * A task of the embedded backend: a {@link RunTask} plus its variant as the coordinator already
 * parsed it while planning (`parseScenarioText(text, file, { sets })`, the very call the thread
 * would make). A sweep thread that receives it needs no YAML parser and no schema: it never loads
 * them, which is most of its start-up. BullMQ jobs carry text only (any version of any machine
 * may take them).
 */
export interface LocalRunTask extends RunTask {
  scenario?: Scenario;
}

/** A run's report without wall-clock fields (`wallMs`, `workers`): identical for any `--threads`. */
export type SweepReport = Omit<Report, 'wallMs' | 'workers'>;

/** Why a run produced no report. */
export interface RunError {
  /** `event-cap`: the scenario's maxEvents was reached; `internal`: a model or kernel error. */
  kind: 'internal' | 'event-cap';
  message: string;
  actor?: string;
  event?: string;
  atNs?: number;
}

/** A run that crashed: reported in place of its report, with its replay command. */
export interface FailedRun {
  rapsim: string;
  scenario: string;
  seed: number;
  error: RunError;
  replay: string;
}

/** What one simulation produced; `exit` is the exit code `rapsim run` would give it. */
export type RunOutcome = { exit: 0 | 1; report: SweepReport } | { exit: 3; failed: FailedRun };

/** Occurrence of one property over a variant's runs. */
export interface PropertyTally {
  /** Runs in which it occurred. */
  runs: number;
  /** Uses summed over those runs. */
  occurrences: number;
  advisory: boolean;
}

/** One row of the summary table. */
export interface VariantSummary {
  runs: number;
  /** Seeds whose run would exit non-zero: a violation the scenario does not allow, or a crash. */
  failingSeeds: number[];
  /** Seeds whose run crashed or hit its event cap (a subset of failingSeeds). */
  crashedSeeds: number[];
  violations: Partial<Record<Property, PropertyTally>>;
  shootdowns: {
    count: number;
    /** Median over the variant's runs of each run's p50 and p99 (exact for one seed). */
    p50Ns: number;
    p99Ns: number;
    /**
     * Of the shootdowns' targets (their CPU masks), the share they interrupted, over all runs
     * (the rest were skipped or deferred); null without shootdowns, or for reports without it.
     */
    interruptedShare: number | null;
  };
  returns: number;
  mispredicted: number;
  /** mispredicted / returns over all runs; null without returns. */
  mispredictionRate: number | null;
  /**
   * RETs that found the RAP empty and fell back to the indirect predictor, over all runs: what
   * clearing the RAP costs. rapsim does not model that predictor's accuracy, so no time is charged.
   */
  underflows: number;
  /** underflows / returns over all runs; null without returns. */
  underflowRate: number | null;
  /**
   * How much the two rates move from seed to seed: the sample standard deviation over the runs of
   * each run's own rate (null with fewer than two runs that had returns). Beside a difference
   * between variants it says whether the seeds are enough to trust it.
   */
  mispredictionRateSd: number | null;
  underflowRateSd: number | null;
  /** RAP clears per run (mean over the runs that produced a report, one decimal), all causes. */
  clearsPerRun: number;
  /** The same by cause (`vmrun-clear-rap`, `mov-cr3`, …), causes in name order. */
  clearsPerRunByCause: Record<string, number>;
  /**
   * VMRUNs that KVM issued with CLEAR_RAP set, per run (mean, one decimal): what a policy itself
   * costs, without the clears every policy shares (AutoIBRS at #VMEXIT, the guest's own MOV CR3).
   * Null when no run had a world switch (bare metal).
   */
  clearRapVmrunsPerRun: number | null;
  /** Simulated cost per run (mean over the runs that produced a report), in ns. */
  costNsPerRun: { stuffing: number; mispredictions: number; flushIpiHandlers: number };
  /** Useful work: median over the runs of workload operations per simulated second. */
  workOpsPerSecond: number;
  /** Share of vCPU time spent runnable but not running (steal), over all runs; null without VMs. */
  stealShare: number | null;
}

/** One variant of the sweep document. */
export interface VariantDocument {
  set: VariantSet;
  seeds: number[];
  summary: VariantSummary;
  reports: (SweepReport | FailedRun)[];
}

/**
 * One value of a varied key across the sweep: how many variants have it, how many of those broke
 * a promise (a non-advisory violation in any run), and how many have a failing seed.
 */
export interface ValueTally {
  value: MatrixValue;
  variants: number;
  violating: number;
  failing: number;
}

/** What `rapsim sweep --json` prints and `--out` writes as sweep.json. */
export interface SweepDocument {
  rapsim: string;
  scenario: string;
  file: string;
  vary: Record<string, MatrixValue[]>;
  seeds: number[];
  runs: { planned: number; finished: number; failed: number; crashed: number };
  /** True when the sweep was stopped (Ctrl-C) before every run finished. */
  interrupted: boolean;
  /** The exit code of the sweep: 3 if a run crashed, else 1 if a run failed, else 0. */
  exitCode: 0 | 1 | 3;
  variants: VariantDocument[];
  /**
   * Each varied key's values in order, tallied over the variants (finished runs only): which
   * settings break promises, read off a matrix too large to scan row by row.
   */
  byValue: Record<string, ValueTally[]>;
}
