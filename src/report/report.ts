import { toNs } from '../actors/time.js';
import { VIOLATIONS_LISTED } from '../check/checkerSuite.js';
import { ADVISORY, type Property, type Violation } from '../check/violation.js';
import type { Scenario } from '../scenario/schema.js';
import type { RunResult } from '../workers/runSimulation.js';
import { collectMetrics, type Metrics } from './metrics.js';

/** Outcome of the scenario's `expect:` block. */
export interface ExpectOutcome {
  ok: boolean;
  problems: string[];
}

/** The JSON report (interface.md). Only `workers` and `wallMs` may depend on the worker count. */
export interface Report {
  rapsim: string;
  scenario: string;
  seed: number;
  workers: number;
  simulatedNs: number;
  events: number;
  wallMs: number;
  traceDigest: string;
  violations: Violation[];
  /** Occurrences per property, including those beyond the listed violations. */
  violationCounts: Record<Property, number>;
  /** Non-advisory properties that occurred. */
  failing: Property[];
  expect: ExpectOutcome | null;
  topology: {
    cores: number;
    sockets: number;
    coresPerSocket: number;
    spec: string;
    rapEntries: number;
    partitions: number;
  };
  metrics: Metrics;
  /** The command that replays this run. */
  replay: string;
}

/** Judges the scenario's `expect:` against what the run found. */
export function judgeExpect(s: Scenario, counts: Record<Property, number>): ExpectOutcome | null {
  const e = s.expect;
  if (!e) return null;
  const problems: string[] = [];
  const found = (Object.entries(counts) as [Property, number][]).filter(([, n]) => n > 0).map(([p]) => p);
  if (e.violations) {
    const allowed = new Set<string>(e.violations);
    for (const p of found) {
      if (!ADVISORY.has(p) && !allowed.has(p))
        problems.push(`${p} occurred but expect.violations does not allow it`);
    }
  }
  for (const p of e.find ?? []) {
    if (!found.includes(p as Property)) problems.push(`${p} was expected (expect.find) but did not occur`);
  }
  return { ok: problems.length === 0, problems };
}

/**
 * Exit code of a finished run (interface.md): with an `expect:` block, 0 when it holds (its
 * `violations` list is what may occur; omitted, anything may); without one, 1 when a
 * non-advisory property occurred.
 */
export function exitCodeOf(r: Report): 0 | 1 {
  if (r.expect) return r.expect.ok ? 0 : 1;
  return r.failing.length > 0 ? 1 : 0;
}

export function buildReport(
  s: Scenario,
  r: RunResult,
  o: { version: string; workers: number; replay: string },
): Report {
  return {
    rapsim: o.version,
    scenario: s.name,
    seed: s.seed,
    workers: o.workers,
    simulatedNs: toNs(r.simulatedPs),
    events: r.events,
    wallMs: r.wallMs,
    traceDigest: r.traceDigest,
    violations: r.violations.slice(0, VIOLATIONS_LISTED),
    violationCounts: r.violationCounts,
    failing: r.failing,
    expect: judgeExpect(s, r.violationCounts),
    topology: {
      cores: s.hardware.cores,
      sockets: s.hardware.sockets,
      coresPerSocket: s.hardware.coresPerSocket,
      spec: s.hardware.spec,
      rapEntries: s.hardware.rapEntries,
      partitions: r.topology.partitions,
    },
    metrics: collectMetrics(r.actors, r.topology.timing, r.simulatedPs),
    replay: o.replay,
  };
}
