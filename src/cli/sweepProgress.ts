import cliProgress from 'cli-progress';
import type { PlannedRun, RunOutcome, SweepPlan } from '../sweep/types.js';

/** How a sweep shows progress: a bar on a terminal, one line per run otherwise, or nothing. */
export type ProgressMode = 'bar' | 'lines' | 'off';

export interface SweepProgress {
  /** A run finished. */
  done(run: PlannedRun, outcome: RunOutcome): void;
  /** A note between runs (e.g. "3 results reused from Redis"); shown in `lines` mode only. */
  note(text: string): void;
  stop(): void;
}

/** What one finished run found, in a few words. */
export function outcomeWords(o: RunOutcome): string {
  if (o.exit === 3) {
    return `${o.failed.error.kind === 'event-cap' ? 'event cap reached' : 'crashed'}: ${o.failed.error.message}`;
  }
  const found = Object.entries(o.report.violationCounts)
    .filter(([, n]) => n > 0)
    .map(([p, n]) => `${p} ×${n.toLocaleString('en-US')}`);
  const verdict = o.exit === 0 ? 'ok' : 'FAILED';
  return found.length ? `${verdict} (${found.join(', ')})` : verdict;
}

/** The variant and seed of a run, as a reader names it: `hardware.spec=legacy seed 3`. */
export function runLabel(plan: SweepPlan, run: PlannedRun): string {
  const set = plan.variants[run.variant] ?? {};
  const parts = Object.entries(set).map(([k, v]) => `${k}=${String(v)}`);
  return [...parts, `seed ${run.seed}`].join(' ');
}

/**
 * Progress of a sweep on stderr: a cli-progress bar (runs done, runs with violations, runs that
 * fail — a violation or a failed check the scenario's `expect:` does not allow —, crashed runs,
 * ETA) on a terminal; one plain line per finished run when stderr is not a terminal.
 *
 * @example
 * const progress = createSweepProgress(process.stderr, plan, 'bar');
 * progress.done(run, outcome); progress.stop();
 */
export function createSweepProgress(
  stream: NodeJS.WriteStream,
  plan: SweepPlan,
  mode: ProgressMode,
): SweepProgress {
  const total = plan.runs.length;
  let finished = 0;
  let violating = 0;
  let failing = 0;
  let crashed = 0;
  let bar: cliProgress.SingleBar | undefined;
  if (mode === 'bar') {
    bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          'sweep [{bar}] {value}/{total} runs | {violating} with violations | {failing} failing | {crashed} crashed | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { violating: 0, failing: 0, crashed: 0 });
  }
  const width = String(total).length;
  return {
    done(run, outcome) {
      finished++;
      if (outcome.exit === 3) crashed++;
      else {
        // Violations the scenario expects (a study's broken policies) count here, not as failing.
        if (outcome.report.failing.length > 0) violating++;
        if (outcome.exit === 1) failing++;
      }
      if (bar) bar.update(finished, { violating, failing, crashed });
      else if (mode === 'lines') {
        stream.write(
          `[${String(finished).padStart(width)}/${total}] ${runLabel(plan, run)}: ${outcomeWords(outcome)}\n`,
        );
      }
    },
    note(text) {
      if (mode === 'lines') stream.write(`${text}\n`);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
