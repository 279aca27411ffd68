import { toNs } from '../actors/time.js';
import { decodeContext, KERNEL_PROCESS, STUFF_PROCESS } from '../hw/context.js';
import type { RapUseObs, ShootdownCompleteObs } from '../hw/observations.js';
import type { Report } from '../report/report.js';
import { pcpuId } from '../workers/compose.js';
import type { RecordedTrace } from '../workers/runSimulation.js';
import { RAP_ENTRY_WIDTH, type RapDelta } from '../workers/traceProbe.js';
import { type ActorInfo, groupsOf } from './actors.js';
import { allStates } from './chartModel.js';
import type { Chart } from './charts.js';
import type { KeptEvent } from './recorded.js';
import type { ContextInfo, TimelineFile, TimelineViolation } from './timelineFormat.js';

export interface TimelineInput {
  report: Report;
  actors: readonly ActorInfo[];
  trace: RecordedTrace;
  kept: readonly KeptEvent[];
  sampleEvery: number;
  charts: readonly Chart[];
  /** VM names by index (for context labels). */
  vmNames: readonly string[];
}

/** Builds the viewer's `timeline.json` (see {@link TimelineFile}). */
export function buildTimeline(x: TimelineInput): TimelineFile {
  const { report, actors, trace, kept } = x;
  const types: string[] = [];
  const typeIx = new Map<string, number>();
  const states: string[] = [];
  const stateIx = new Map<string, number>();
  const intern = (list: string[], ix: Map<string, number>, s: string): number => {
    let i = ix.get(s);
    if (i === undefined) {
      i = list.length;
      list.push(s);
      ix.set(s, i);
    }
    return i;
  };
  const events: TimelineFile['events'] = { dt: [], lag: [], src: [], dst: [], type: [], state: [] };
  const obs: TimelineFile['obs'] = { ev: [], kind: [], data: [] };
  const obsKinds: string[] = [];
  const obsKindIx = new Map<string, number>();
  const obsData: unknown[] = [];
  const obsDataIx = new Map<string, number>();
  const rap: TimelineFile['rap'] = { ev: [], actor: [], host: [], guest: [] };
  const contextList: number[] = [];
  const ctxIx = new Map<number, number>();
  const encode = (d: RapDelta | undefined, t: number): RapDelta | null => {
    if (!d) return null;
    const add = d.add.slice();
    for (let j = 0; j < add.length; j += RAP_ENTRY_WIDTH) {
      const c = add[j]!;
      let ci = ctxIx.get(c);
      if (ci === undefined) {
        ci = contextList.length;
        contextList.push(c);
        ctxIx.set(c, ci);
      }
      add[j] = ci;
      add[j + 1] = t - add[j + 1]!;
    }
    return { keep: d.keep, add };
  };
  let prevT = 0;
  const shootdowns: TimelineFile['shootdowns'] = { latencyNs: [], targets: [], crossSocket: [], atPs: [] };
  kept.forEach((k, i) => {
    const e = k.e;
    events.dt.push(e.t - prevT);
    prevT = e.t;
    events.lag.push(e.t - e.sent);
    events.src.push(e.src);
    events.dst.push(e.dst);
    events.type.push(intern(types, typeIx, e.type));
    events.state.push(intern(states, stateIx, e.state));
    for (const o of k.obs) {
      obs.ev.push(i);
      obs.kind.push(intern(obsKinds, obsKindIx, o.kind));
      const text = JSON.stringify(o.data);
      let di = obsDataIx.get(text);
      if (di === undefined) {
        di = obsData.length;
        obsData.push(o.data);
        obsDataIx.set(text, di);
      }
      obs.data.push(di);
      if (o.kind === 'tlb.shootdown.complete') {
        const d = o.data as ShootdownCompleteObs;
        shootdowns.latencyNs.push(toNs(d.latency));
        shootdowns.targets.push(d.targets);
        shootdowns.crossSocket.push(d.crossSocket);
        shootdowns.atPs.push(o.t);
      }
    }
    if (k.rap) {
      rap.ev.push(i);
      rap.actor.push(k.rapActor ?? e.dst);
      rap.host.push(encode(k.rap.host, e.t));
      rap.guest.push(encode(k.rap.guest, e.t));
    }
  });
  const contexts: Record<string, ContextInfo> = {};
  for (const c of contextList) contexts[String(c)] = contextInfo(c, x.vmNames);
  const last = kept.length > 0 ? kept[kept.length - 1]!.e.t : trace.from;
  const endPs = trace.truncated ? last : Math.max(last, Math.min(trace.to, report.simulatedNs * 1000));
  const charts: TimelineFile['charts'] = {};
  const kinds = new Set(actors.map((a) => a.kind));
  for (const c of x.charts) {
    if (!kinds.has(c.kind)) continue;
    charts[c.kind] = {
      machineId: c.model.machineId,
      description: c.description,
      svg: c.svg,
      states: allStates(c.model.root).map((s) => s.id),
    };
  }
  const recorded = trace.entries.filter((e) => e.seq !== -1).length;
  return {
    format: 'rapsim-timeline',
    version: 1,
    run: {
      rapsim: report.rapsim,
      scenario: report.scenario,
      seed: report.seed,
      traceDigest: report.traceDigest,
      replay: report.replay,
      simulatedPs: report.simulatedNs * 1000,
      events: report.events,
      spec: report.topology.spec,
      rapEntries: report.topology.rapEntries,
      cores: report.topology.cores,
    },
    window: {
      fromPs: trace.from,
      endPs,
      truncated: trace.truncated,
      sampleEvery: x.sampleEvery,
      recorded,
      kept: kept.filter((k) => k.e.seq !== -1).length,
    },
    groups: groupsOf(actors),
    actors: actors.map((a) => ({ ...a })),
    charts,
    types,
    states,
    events,
    obs,
    obsKinds,
    obsData,
    rap,
    contextList,
    contexts,
    violations: report.violations.map((v) => locateViolation(v, actors, kept)),
    metrics: report.metrics,
    violationCounts: report.violationCounts,
    failing: report.failing,
    expect: report.expect,
    shootdowns,
  };
}

/**
 * Finds the event during which a violation happened: the event of its core, at its time (ns),
 * carrying a RAP-use observation of the same producer push time; otherwise the core's last event
 * at or before that time. Collects the push times of every entry used like it in that event.
 */
function locateViolation(
  v: Report['violations'][number],
  actors: readonly ActorInfo[],
  kept: readonly KeptEvent[],
): TimelineViolation {
  const actor = actors.findIndex((a) => a.id === pcpuId(v.pcpu));
  const producerNs = (v.producer as { atNs?: number }).atNs;
  let ev = -1;
  let use: RapUseObs | undefined;
  let fallback = -1;
  // The RET ran in an event of the core or of a vCPU on it: the one whose RAP-use observation
  // names this core and the producer's push time.
  for (let i = 0; i < kept.length; i++) {
    const k = kept[i]!;
    const ns = toNs(k.e.t);
    if (ns > v.atNs) break;
    if (k.e.dst === actor) fallback = i;
    if (ns !== v.atNs) continue;
    const u = k.obs.find(
      (o) =>
        o.kind === 'rap.use' &&
        (o.data as RapUseObs).pcpu === v.pcpu &&
        (producerNs === undefined || toNs((o.data as RapUseObs).pushedAt) === producerNs),
    );
    if (u) {
      ev = i;
      use = u.data as RapUseObs;
      break;
    }
  }
  if (ev < 0) ev = fallback;
  const out: TimelineViolation = {
    property: v.property,
    atNs: v.atNs,
    pcpu: v.pcpu,
    promise: v.promise,
    because: v.because,
    events: v.events,
    occurrences: v.occurrences,
    consumer: { ...v.consumer },
    producer: { ...v.producer },
    actor,
    ev,
  };
  if (use) {
    out.producerPushedPs = use.pushedAt;
    out.producerCtx = use.producer;
  }
  return out;
}

/** A readable name and a colour key for an encoded pusher context. */
export function contextInfo(c: number, vmNames: readonly string[]): ContextInfo {
  const d = decodeContext(c);
  const vm = vmNames[d.vm] ?? `vm${d.vm}`;
  const who =
    d.process === STUFF_PROCESS
      ? 'stuffing'
      : d.process === KERNEL_PROCESS
        ? 'kernel'
        : `process ${d.process}`;
  const label =
    d.world === 'host' ? `host ${who}` : `${vm}${d.level > 1 ? ` L${d.level}` : ''} vCPU ${d.view} ${who}`;
  const colourKey =
    d.process === STUFF_PROCESS ? 'stuffing' : d.world === 'host' ? `host/${who}` : `${vm}/${d.level}/${who}`;
  return { ...d, label, colourKey };
}
