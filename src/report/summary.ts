import { formatDuration, NS } from '../actors/time.js';
import { ADVISORY } from '../check/violation.js';
import type { Report } from './report.js';

const fmt = (n: number): string => n.toLocaleString('en-US');
const plural = (n: number, what: string): string => `${fmt(n)} ${what}${n === 1 ? '' : 's'}`;
const pct = (a: number, b: number): string => (b === 0 ? '–' : `${((100 * a) / b).toFixed(1)}%`);
/** Report times are whole ns; shown with the same formatter as the causal chains. */
const ns = (n: number): string => formatDuration(n * NS);

/**
 * The readable summary of a run: topology, what ran, each violation with the promise, the path
 * and why no clear reached the hardware, key metrics, and the command that replays it.
 */
export function renderSummary(r: Report, opts: { maxViolations?: number } = {}): string {
  const out: string[] = [];
  const t = r.topology;
  out.push(`rapsim ${r.rapsim} · scenario ${r.scenario} · seed ${r.seed} · ${r.workers} worker(s)`);
  out.push(
    `machine: ${plural(t.cores, 'core')} (${plural(t.sockets, 'socket')} × ${t.coresPerSocket}), spec ${t.spec}, RAP ${t.rapEntries} entries`,
  );
  out.push(
    `ran ${ns(r.simulatedNs)} simulated in ${fmt(r.wallMs)} ms: ${fmt(r.events)} events, trace ${r.traceDigest.slice(0, 23)}…`,
  );
  out.push('');
  const shown = opts.maxViolations ?? 5;
  const props = Object.entries(r.violationCounts).filter(([, n]) => n > 0);
  if (props.length === 0) out.push('violations: none');
  else {
    out.push('violations:');
    for (const [p, n] of props) {
      out.push(
        `  ${ADVISORY.has(p as never) ? '! ' : '✗ '}${p}${ADVISORY.has(p as never) ? ' (advisory)' : ''}: ${fmt(n)} use(s)`,
      );
    }
    for (const v of r.violations.slice(0, shown)) {
      out.push('');
      out.push(`  ${v.property} at ${ns(v.atNs)} on pCPU ${v.pcpu} (${v.occurrences} use(s) like it)`);
      out.push(`    promise: ${v.promise}`);
      out.push(`    because: ${v.because}`);
      for (const e of v.events) out.push(`      · ${e}`);
    }
    if (r.violations.length > shown)
      out.push(`  … ${r.violations.length - shown} more distinct finding(s) in --json`);
  }
  out.push('');
  const m = r.metrics;
  out.push(
    `returns: ${fmt(m.rap.returns)} — predicted ${pct(m.rap.predicted, m.rap.returns)}, mispredicted ${pct(m.rap.mispredicted, m.rap.returns)}, underflowed ${pct(m.rap.underflows, m.rap.returns)}`,
  );
  const clears = Object.entries(m.rap.clears).map(([c, n]) => `${c} ${fmt(n)}`);
  out.push(
    `RAP clears: ${clears.length ? clears.join(', ') : 'none'}; stuffing CALLs: ${fmt(m.rap.stuffingCalls)}`,
  );
  out.push(
    `cost: stuffing ${ns(m.costNs.stuffing)}, mispredictions ${ns(m.costNs.mispredictions)}, flush-IPI handlers ${ns(m.costNs.flushIpiHandlers)}, exits ${ns(m.costNs.exits)}; context switches ${fmt(m.contextSwitches)}`,
  );
  if (m.worldSwitches > 0) {
    const exits = Object.entries(m.exits).map(([r, n]) => `${r} ${fmt(n)}`);
    out.push(
      `world switches: ${fmt(m.worldSwitches)} (VMRUNs with CLEAR_RAP: ${fmt(m.clearRapVmruns)}); exits: ${exits.join(', ') || 'none'}`,
    );
  }
  const extra = Object.entries(m.rap.clears)
    .filter(([c]) => c.startsWith('microarch:'))
    .reduce((n, [, k]) => n + k, 0);
  if (extra > 0) {
    out.push(
      `note: the modelled silicon cleared the RAP ${fmt(extra)} time(s) beyond what ${r.topology.spec} promises (microarchClears); such clears can hide a hypervisor's missing CLEAR_RAP — judge a policy with microarchClears: 0`,
    );
  }
  const sd = m.shootdowns;
  if (sd.count > 0) {
    out.push(
      `shootdowns: ${fmt(sd.count)}, latency p50 ${ns(sd.latencyNs.p50)}, p90 ${ns(sd.latencyNs.p90)}, p99 ${ns(sd.latencyNs.p99)}, max ${ns(sd.latencyNs.max)}`,
    );
    out.push('  targets  sockets  count     p50      p99  interrupted');
    for (const g of sd.byTargets) {
      out.push(
        `  ${String(g.targets).padStart(7)}  ${(g.crossSocket ? 'cross' : 'one').padEnd(7)}  ${String(g.count).padStart(5)}  ${ns(g.latencyNs.p50).padStart(8)} ${ns(g.latencyNs.p99).padStart(8)}  ${g.interruptedMean.toFixed(1).padStart(11)}`,
      );
    }
    const skipped = sd.lazySkippedTargets + sd.otherMmSkippedTargets;
    if (skipped > 0 && m.worldSwitches === 0 && sd.waitNs.preemptedWait === 0) {
      // Bare metal: the initiator-wait line below (which names them too) is for VMs.
      out.push(
        `  targets skipped (not interrupted): running another address space ${fmt(sd.otherMmSkippedTargets)}, idle in lazy TLB mode ${fmt(sd.lazySkippedTargets)}`,
      );
    }
    if (sd.byVm.length > 1) {
      const rows = sd.byVm.map(
        (v) => `${v.vm} ${fmt(v.count)} (p50 ${ns(v.latencyNs.p50)}, p99 ${ns(v.latencyNs.p99)})`,
      );
      out.push(`  by VM: ${rows.join('; ')}`);
    }
  }
  if (sd.count > 0 && (m.worldSwitches > 0 || sd.waitNs.preemptedWait > 0)) {
    const w = sd.waitNs;
    const total = w.delivery + w.preemptedWait + w.handler;
    out.push(
      `  initiator wait: delivery ${pct(w.delivery, total)}, waiting for preempted/halted targets ${pct(w.preemptedWait, total)}, handlers ${pct(w.handler, total)}; exits per shootdown ${sd.exitsPerShootdown}; targets skipped by PV TLB flush ${fmt(sd.pvDeferredTargets)}, idle in lazy TLB mode ${fmt(sd.lazySkippedTargets)}, running another address space ${fmt(sd.otherMmSkippedTargets)}${sd.hvFlushedTargets > 0 ? `, flushed by the host (Hyper-V) ${fmt(sd.hvFlushedTargets)}` : ''}`,
    );
    out.push(
      `  histogram: ${sd.histogram
        .filter((b) => b.count > 0)
        .map((b) => `<${ns(b.toNs)} ${fmt(b.count)}`)
        .join(' · ')}`,
    );
  }
  if (m.scheduler.vcpus.length > 0) {
    const byVm = m.work.byVm.map((v) => `${v.vm} ${fmt(v.opsPerSecond)}`).join(', ');
    out.push(`guest work: ${fmt(m.work.opsPerSecond)} ops per simulated second (${byVm})`);
    const sch = m.scheduler;
    const steal = sch.vcpus.reduce((n, v) => n + v.stealNs, 0);
    const run = sch.vcpus.reduce((n, v) => n + v.runNs, 0);
    const worst = sch.vcpus.reduce((a, b) => (b.stealNs > a.stealNs ? b : a));
    const longest = sch.vcpus.reduce((a, b) => (b.maxStealNs > a.maxStealNs ? b : a));
    out.push(
      `host scheduler: vCPU switches ${fmt(sch.vcpuSwitches)}, IBPBs ${fmt(sch.ibpbs)}, kicks ${fmt(sch.kicks.interrupt)} to inject + ${fmt(sch.kicks.preempt)} to preempt, migrations ${fmt(sch.migrations)}; steal ${pct(steal, steal + run)} of vCPU time (most: ${worst.vm} vCPU ${worst.vcpu}, ${ns(worst.stealNs)}; longest wait: ${longest.vm} vCPU ${longest.vcpu}, ${ns(longest.maxStealNs)})`,
    );
    if (sch.vcpus.some((v) => v.nice !== 0)) {
      // Weights set: what each VM's vCPU threads got of the pCPUs, beside their nice values.
      const byVm = new Map<string, { nice: Set<number>; run: number }>();
      for (const v of sch.vcpus) {
        const e = byVm.get(v.vm) ?? { nice: new Set<number>(), run: 0 };
        e.nice.add(v.nice);
        e.run += v.runNs;
        byVm.set(v.vm, e);
      }
      const rows = [...byVm].map(
        ([vm, e]) => `${vm} (nice ${[...e.nice].join('/')}) ${ns(e.run)}, ${pct(e.run, run)}`,
      );
      out.push(`vCPU time by VM: ${rows.join('; ')}`);
    }
    if (sch.pleExits > 0) {
      out.push(
        `PAUSE-loop exiting: ${fmt(sch.pleExits)} PAUSE exits of spinning vCPUs, ${fmt(sch.directedYields)} of them gave their pCPU away (directed yield); ${fmt(sch.boosts)} targets boosted (next buddy)`,
      );
    }
    if (sch.hostTasks.length > 0) {
      const tRun = sch.hostTasks.reduce((n, t) => n + t.runNs, 0);
      const bursts = sch.hostTasks.reduce((n, t) => n + t.bursts, 0);
      const tWait = sch.hostTasks.reduce((n, t) => n + t.waitNs, 0);
      const late = sch.hostTasks.reduce((a, b) => (b.maxWaitNs > a.maxWaitNs ? b : a));
      out.push(
        `host tasks: ${fmt(sch.hostTasks.length)} thread(s), ${fmt(bursts)} bursts, ran ${ns(tRun)}, waited ${ns(tWait)} for the pCPU (worst: ${late.name} on core ${late.core}, ${ns(late.maxWaitNs)})`,
      );
    }
  }
  if (r.expect) {
    out.push('');
    out.push(r.expect.ok ? 'expect: met' : `expect: FAILED — ${r.expect.problems.join('; ')}`);
  }
  out.push('');
  out.push(`replay: ${r.replay}`);
  return out.join('\n');
}
