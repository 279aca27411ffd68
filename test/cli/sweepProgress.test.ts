import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSweepProgress } from '../../src/cli/sweepProgress.js';
import { parseVary, planSweep } from '../../src/sweep/plan.js';
import type { RunOutcome } from '../../src/sweep/types.js';
import { repoRoot } from '../helpers/cli.js';

const LITMUS = 'scenarios/bare-metal/litmus-stuffing-too-short.yaml';

/** A terminal that keeps what is written to it. */
function terminal() {
  let text = '';
  const stream = {
    isTTY: true,
    columns: 200,
    write: (s: string) => {
      text += s;
      return true;
    },
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
    on: () => stream,
    removeListener: () => stream,
  };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

const outcome = (exit: 0 | 1, failing: string[]): RunOutcome =>
  ({ exit, report: { failing, violationCounts: {} } }) as never;

describe('the sweep progress bar', () => {
  it('tells runs with violations from failing runs: a study expects some violations', () => {
    const plan = planSweep({
      rapsim: 'v',
      file: LITMUS,
      text: readFileSync(resolve(repoRoot, LITMUS), 'utf8'),
      sets: [],
      vary: [parseVary('hardware.spec=legacy,eraps-amd')],
      seeds: [1, 2],
      replayOf: () => '',
    });
    const tty = terminal();
    const progress = createSweepProgress(tty.stream, plan, 'bar');
    // An allowed violation, a failing one, a clean run.
    progress.done(plan.runs[0]!, outcome(0, ['rap-promised-clear']));
    progress.done(plan.runs[1]!, outcome(1, ['rap-promised-clear']));
    progress.done(plan.runs[2]!, outcome(0, []));
    progress.done(plan.runs[3]!, {
      exit: 3,
      failed: { rapsim: 'v', scenario: 's', seed: 2, error: { kind: 'internal', message: 'x' }, replay: '' },
    });
    progress.stop();
    expect(tty.text()).toContain('4/4 runs | 2 with violations | 1 failing | 1 crashed');
  });
});
