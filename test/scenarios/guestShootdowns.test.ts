import { describe, expect, it } from 'vitest';
import type { HostSchedStats } from '../../src/host/hostScheduler.js';
import { collectMetrics, type Metrics } from '../../src/report/metrics.js';
import { loadScenario, parseScenarioText } from '../../src/scenario/load.js';
import { type RunResult, runSimulation } from '../../src/workers/runSimulation.js';
import { rapsimJson, writeTempScenario } from '../helpers/cli.js';

/**
 * Guest TLB shootdowns end to end (scenario text → host scheduler + KVM + guest OS actors →
 * checkers → metrics), docs/domain.md §3–§4 and timing.md's published shapes: exit-based guest
 * shootdowns cost more than native ones and AVIC sits between; under overcommit, initiators wait
 * for preempted targets for up to a slice unless PV TLB flush skips them; a PV path that forgets
 * the deferred flush is caught by `tlb-stale`; IBPB on vCPU switch; results independent of
 * the worker count.
 */

const SLICE_NS = 2_800_000; // the default host scheduler slice (timing.md)

interface VmOpts {
  cores: number;
  vms: number;
  vcpus: number;
  until: string;
  avic?: boolean;
  npt?: boolean;
  pvTlbFlush?: boolean | boolean[];
  hypervTlbFlush?: boolean;
  shootdownEvery?: string;
  hltEvery?: string;
  hltFor?: string;
  policy?: string;
  workingSetPages?: number;
  ibpbOnVcpuSwitch?: boolean;
  ibpbClearsRap?: boolean;
  slice?: string;
  /** host.scheduler.migration (unpinned vCPUs that halt put their domain in one partition). */
  migration?: string;
}

/** VMs whose guests shoot down their other vCPUs about every 100 µs (ebizzy-like, one process). */
function vmYaml(o: VmOpts): string {
  const pv = (i: number) => (Array.isArray(o.pvTlbFlush) ? o.pvTlbFlush[i] : o.pvTlbFlush) ?? false;
  const vms = Array.from(
    { length: o.vms },
    (_, i) => `  - name: vm${i}
    vcpus: ${o.vcpus}
    pvTlbFlush: ${pv(i)}
    hypervTlbFlush: ${o.hypervTlbFlush ?? false}
    guest:
      processes: 1
      contextSwitch: { every: 0 }
      shootdown: { every: ${o.shootdownEvery ?? '100us'}, pages: 1 }
${o.hltEvery ? `      hlt: { every: ${o.hltEvery}${o.hltFor ? `, for: ${o.hltFor}` : ''} }\n` : ''}${o.workingSetPages ? `      workingSetPages: ${o.workingSetPages}\n` : ''}`,
  ).join('');
  return `name: t
seed: 1
until: ${o.until}
hardware: { cores: ${o.cores}, spec: eraps-amd, ibpbClearsRap: ${o.ibpbClearsRap ?? true} }
host:
  npt: ${o.npt ?? true}
  avic: ${o.avic ?? false}
  policy: ${o.policy ?? 'linux-7.0'}
  ibpbOnVcpuSwitch: ${o.ibpbOnVcpuSwitch ?? true}
${o.slice || o.migration ? `  scheduler: { ${[o.slice ? `slice: ${o.slice}` : '', o.migration ? `migration: ${o.migration}` : ''].filter(Boolean).join(', ')} }\n` : ''}vms:
${vms}`;
}

/** The same guest workload on bare metal: one process with a thread on every core. */
function bareMetalYaml(cores: number, until: string): string {
  return `name: t
seed: 1
until: ${until}
hardware: { cores: ${cores}, spec: eraps-amd }
hostProcesses:
  count: 1
  contextSwitch: { every: 0 }
  shootdown: { every: 100us, pages: 1 }
`;
}

interface Run {
  r: RunResult;
  m: Metrics;
}

const runs = new Map<string, Promise<Run>>();

/** Runs a scenario in-process (once per text: several tests compare against the same runs). */
function run(text: string): Promise<Run> {
  let p = runs.get(text);
  if (!p) {
    p = runSimulation(parseScenarioText(text, 'test.yaml'), { workers: 1, inProcess: true }).then((r) => ({
      r,
      m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs),
    }));
    runs.set(text, p);
  }
  return p;
}

describe('guest shootdowns on dedicated cores: native < AVIC < exit-based', () => {
  const topo = { cores: 2, vms: 1, vcpus: 2, until: '2ms' };

  it('exit-based (KVM_HC_SEND_IPI): shootdowns complete, no stale translation, slower than native', async () => {
    const [native, exitBased] = await Promise.all([run(bareMetalYaml(2, '2ms')), run(vmYaml(topo))]);
    const n = native.m.shootdowns;
    const g = exitBased.m.shootdowns;
    // One shootdown per vCPU about every 100 µs for 2 ms.
    expect(n.count).toBeGreaterThan(20);
    expect(g.count).toBeGreaterThan(20);
    expect(exitBased.r.violationCounts['tlb-stale']).toBe(0);
    expect(exitBased.r.failing).toEqual([]);
    // Each shootdown leaves the guest with a hypercall, and its target is kicked out to be injected.
    expect(exitBased.m.exits.vmmcall).toBeGreaterThanOrEqual(g.count);
    expect(exitBased.m.scheduler.kicks.interrupt).toBeGreaterThan(0);
    expect(g.exitsPerShootdown).toBeGreaterThanOrEqual(2);
    expect(n.exitsPerShootdown).toBe(0);
    // Dedicated cores: nobody waits for a preempted target, nothing is deferred.
    expect(g.waitNs.preemptedWait).toBe(0);
    expect(g.pvDeferredTargets).toBe(0);
    expect(n.latencyNs.p50).toBeGreaterThan(0);
    expect(g.latencyNs.p50).toBeGreaterThan(n.latencyNs.p50);
  });

  it('AVIC: no exit on the send nor on delivery; p50 strictly between native and exit-based', async () => {
    const [native, exitBased, avic] = await Promise.all([
      run(bareMetalYaml(2, '2ms')),
      run(vmYaml(topo)),
      run(vmYaml({ ...topo, avic: true })),
    ]);
    const a = avic.m.shootdowns;
    expect(a.count).toBeGreaterThan(20);
    expect(avic.r.violationCounts['tlb-stale']).toBe(0);
    expect(avic.m.exits.vmmcall ?? 0).toBe(0);
    expect(avic.m.scheduler.kicks.interrupt).toBe(0);
    expect(a.exitsPerShootdown).toBe(0);
    expect(a.latencyNs.p50).toBeGreaterThan(native.m.shootdowns.latencyNs.p50);
    expect(a.latencyNs.p50).toBeLessThan(exitBased.m.shootdowns.latencyNs.p50);
  });
});

describe('guest shootdowns with shadow paging (NPT off)', () => {
  const topo = { cores: 2, vms: 1, vcpus: 2, until: '2ms' };

  it("a target's INVLPG exits to KVM inside the flush handler; the handler acknowledges only after KVM flushed, so no translation survives", async () => {
    const [npt, shadow] = await Promise.all([run(vmYaml(topo)), run(vmYaml({ ...topo, npt: false }))]);
    const s = shadow.m.shootdowns;
    expect(s.count).toBeGreaterThan(20);
    expect(shadow.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
    expect(shadow.r.failing).toEqual([]);
    // Every flush (the initiator's own and each target's) is an intercepted INVLPG.
    expect(shadow.m.exits.invlpg ?? 0).toBeGreaterThanOrEqual(2 * s.count);
    expect(npt.m.exits.invlpg ?? 0).toBe(0);
    // Each shootdown of one page exits twice more than with NPT: the initiator's local INVLPG and
    // its one target's, which both go through KVM.
    expect(s.exitsPerShootdown).toBeGreaterThanOrEqual(npt.m.shootdowns.exitsPerShootdown + 2);
    // The target's INVLPG exit is part of its handler, so of the initiator's wait: the exit's
    // round trip and KVM's handler (1,350 + 300 cycles) take the place of the INVLPG (260), ≈ 460
    // ns at 3 GHz.
    expect(s.latencyNs.p50).toBeGreaterThan(npt.m.shootdowns.latencyNs.p50);
    const perShootdown = (x: Run) => x.m.shootdowns.waitNs.handler / x.m.shootdowns.count;
    expect(perShootdown(shadow)).toBeGreaterThan(perShootdown(npt) + 400);
  });

  it('an acknowledgement held for the INVLPG exit reaches an initiator that shares the pCPU (no link between them)', async () => {
    // Two vCPUs on one core: the ack is written right after the VMRUN that answers the exit, and
    // must sort after that world switch (it used to be sent at the VMRUN's own instant).
    const shared = await run(vmYaml({ cores: 1, vms: 1, vcpus: 2, until: '5ms', npt: false }));
    expect(shared.m.shootdowns.count).toBeGreaterThan(0);
    expect(shared.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
  });

  it('with AVIC too: the doorbell-delivered handler leaves the guest for its INVLPG before it acknowledges', async () => {
    const shadow = await run(vmYaml({ ...topo, npt: false, avic: true }));
    expect(shadow.m.shootdowns.count).toBeGreaterThan(20);
    expect(shadow.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
    expect(shadow.m.exits.invlpg ?? 0).toBeGreaterThanOrEqual(2 * shadow.m.shootdowns.count);
  });
});

describe('overcommit: 2 VMs of 2 vCPUs on 2 cores', () => {
  const oc = { cores: 2, vms: 2, vcpus: 2, until: '5ms' };

  it('without PV TLB flush initiators wait for preempted targets for up to a slice; with it they do not, and work goes faster', async () => {
    const [plain, pv] = await Promise.all([run(vmYaml(oc)), run(vmYaml({ ...oc, pvTlbFlush: true }))]);
    const p = plain.m.shootdowns;
    const q = pv.m.shootdowns;
    for (const x of [plain, pv]) {
      expect(x.r.violationCounts['tlb-stale']).toBe(0);
      expect(x.r.failing).toEqual([]);
      // Every vCPU shares its core with the same-index vCPU of the other VM: it is preempted and waits.
      expect(x.m.scheduler.vcpus).toHaveLength(4);
      for (const v of x.m.scheduler.vcpus) {
        expect(v.stealNs, `${v.vm}/${v.vcpu} steal`).toBeGreaterThan(0);
        expect(v.runNs, `${v.vm}/${v.vcpu} run`).toBeGreaterThan(0);
      }
      expect(x.m.scheduler.kicks.preempt).toBeGreaterThan(0);
      expect(x.m.shootdowns.count).toBeGreaterThan(50);
    }
    // Without PV: the tail is a preempted target's wait, a large part of a slice.
    expect(p.pvDeferredTargets).toBe(0);
    expect(p.latencyNs.p99).toBeGreaterThanOrEqual(SLICE_NS / 2);
    expect(p.waitNs.preemptedWait).toBeGreaterThan(p.waitNs.delivery + p.waitNs.handler);
    // With PV: preempted targets are skipped (flag set, acknowledged at once)…
    expect(q.pvDeferredTargets).toBeGreaterThan(0);
    expect(pv.m.scheduler.vcpus.reduce((n, v) => n + v.pvDeferredFlushes, 0)).toBe(q.pvDeferredTargets);
    // …so nobody waits for a slice, and the guests get more work done.
    expect(q.latencyNs.p99).toBeLessThan(SLICE_NS / 100);
    expect(q.waitNs.preemptedWait).toBeLessThan(p.waitNs.preemptedWait / 100);
    expect(pv.m.work.opsPerSecond).toBeGreaterThan(plain.m.work.opsPerSecond);
    // The deferred flushes were done by the host before those vCPUs ran again (kvm_vcpu_flush_tlb_guest
    // on ERAPS hardware with linux-7.0: a guest flush also clears the RAP through CLEAR_RAP).
    expect(pv.m.rap.clears['vmrun-clear-rap'] ?? 0).toBeGreaterThan(0);
    expect(plain.m.rap.clears['vmrun-clear-rap'] ?? 0).toBe(0);
  });

  it('with AVIC, an IPI for a target that is not running costs its sender an AVIC_INCOMPLETE_IPI exit; PV TLB flush spares it', async () => {
    const [avic, avicPv] = await Promise.all([
      run(vmYaml({ ...oc, avic: true })),
      run(vmYaml({ ...oc, avic: true, pvTlbFlush: true })),
    ]);
    for (const x of [avic, avicPv]) expect(x.r.violationCounts['tlb-stale']).toBe(0);
    // Preempted targets: IsRunning is clear, the sender exits and KVM kicks the target.
    const incomplete = avic.m.exits['avic-incomplete-ipi'] ?? 0;
    expect(incomplete).toBeGreaterThan(0);
    expect(avic.m.exits.vmmcall ?? 0, 'AVIC sends without a hypercall').toBe(0);
    expect(avic.m.shootdowns.exitsPerShootdown).toBeGreaterThan(0);
    // With PV TLB flush the guest skips preempted targets: no IPI, so no incomplete one either.
    expect(avicPv.m.exits['avic-incomplete-ipi'] ?? 0).toBeLessThan(incomplete / 10);
  });

  it('a PV path that forgets the deferred flush (mutant-forget-pv-flush) is caught by tlb-stale; linux-7.0 is not', async () => {
    const small = { ...oc, pvTlbFlush: true, workingSetPages: 4 };
    const [mutant, linux, mutantNoPv] = await Promise.all([
      run(vmYaml({ ...small, policy: 'mutant-forget-pv-flush' })),
      run(vmYaml(small)),
      run(vmYaml({ ...small, pvTlbFlush: false, policy: 'mutant-forget-pv-flush' })),
    ]);
    expect(mutant.m.shootdowns.pvDeferredTargets).toBeGreaterThan(0);
    expect(mutant.r.violationCounts['tlb-stale']).toBeGreaterThan(0);
    expect(mutant.r.failing).toContain('tlb-stale');
    // The stale translations are used by vCPUs whose flush was deferred.
    const deferred = new Set(
      mutant.m.scheduler.vcpus.filter((v) => v.pvDeferredFlushes > 0).map((v) => `${v.vm}/${v.vcpu}`),
    );
    const stale = mutant.r.violations.filter((v) => v.property === 'tlb-stale');
    expect(stale.length).toBeGreaterThan(0);
    for (const v of stale) expect(deferred).toContain(`${v.consumer.vm}/${v.consumer.vcpu}`);
    // The counterexample names the path that lost the flush, in its causal chain.
    for (const v of stale) {
      expect(v.because).toMatch(/PV TLB flush skipped it while it was preempted/);
      expect(v.events.some((e) => e.includes('KVM_VCPU_FLUSH_TLB'))).toBe(true);
    }
    // The same run with the honest policy, and the mutant without PV TLB flush, are clean.
    expect(linux.m.shootdowns.pvDeferredTargets).toBe(mutant.m.shootdowns.pvDeferredTargets);
    expect(linux.r.violationCounts['tlb-stale']).toBe(0);
    expect(mutantNoPv.m.shootdowns.pvDeferredTargets).toBe(0);
    expect(mutantNoPv.r.violationCounts['tlb-stale']).toBe(0);
  });
});

describe('Hyper-V enlightened TLB flush: one hypercall, the host flushes the targets', () => {
  const oc = { cores: 2, vms: 2, vcpus: 2, until: '5ms' };

  it('under overcommit no initiator waits for a preempted target, and no stale translation survives', async () => {
    const [plain, hv] = await Promise.all([run(vmYaml(oc)), run(vmYaml({ ...oc, hypervTlbFlush: true }))]);
    const h = hv.m.shootdowns;
    expect(hv.r.violationCounts['tlb-stale']).toBe(0);
    expect(hv.r.failing).toEqual([]);
    // One flush hypercall per shootdown, no flush IPI handled by any guest.
    expect(hv.m.exits.vmmcall).toBe(h.count);
    expect(hv.m.costNs.flushIpiHandlers).toBe(0);
    expect(h.hvFlushedTargets).toBeGreaterThanOrEqual(h.count);
    expect(h.pvDeferredTargets).toBe(0);
    // KVM waits only for targets in guest mode, which exit at once when kicked.
    expect(h.latencyNs.p99).toBeLessThan(20_000);
    expect(h.waitNs.preemptedWait).toBe(0);
    expect(h.latencyNs.p99).toBeLessThan(plain.m.shootdowns.latencyNs.p99);
    expect(hv.m.work.opsPerSecond).toBeGreaterThanOrEqual(plain.m.work.opsPerSecond);
  });

  it('per-address flushes use INVLPGA (no RAP clear); an overflowing FIFO is a guest flush, which linux-7.0 turns into CLEAR_RAP', async () => {
    // A shootdown every 100 µs from each of 2 vCPUs: a vCPU preempted for a slice collects far more
    // than the FIFO's 16 entries, so its next entry flushes everything.
    const sets = ['until=10ms', ...[0, 1, 2].map((v) => `vms.${v}.hypervTlbFlush=true`)];
    const r = await runSimulation(loadScenario('scenarios/overcommit/overcommit-3x.yaml', { sets }), {
      workers: 1,
      inProcess: true,
    });
    const overflow = { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
    expect(overflow.r.violationCounts['tlb-stale']).toBe(0);
    expect(overflow.m.clearRapVmruns).toBeGreaterThan(0);
    expect(overflow.m.rap.clears['vmrun-clear-rap']).toBeGreaterThan(0);
    // Dedicated cores: every target runs, is kicked, and flushes per address: no guest flush.
    const dedicated = await run(vmYaml({ cores: 2, vms: 1, vcpus: 2, until: '2ms', hypervTlbFlush: true }));
    expect(dedicated.m.shootdowns.count).toBeGreaterThan(20);
    expect(dedicated.m.clearRapVmruns).toBe(0);
    expect(dedicated.r.violationCounts['tlb-stale']).toBe(0);
  });
});

describe('guests that halt', () => {
  it('KVM re-entering a halted vCPU ends its HLT: the workload runs from that entry on, and a Hyper-V flush done at a later entry removes what it used', async () => {
    // The guest's HLT ended only at its next decision, so the stretch from the wake-up to it ran
    // in one batch then, after flushes the host made in between (and through kicks).
    const o = { cores: 2, vms: 1, vcpus: 2, until: '2ms', hltEvery: '80us', shootdownEvery: '50us' };
    const [hv, plain] = await Promise.all([run(vmYaml({ ...o, hypervTlbFlush: true })), run(vmYaml(o))]);
    for (const x of [hv, plain]) {
      expect(x.m.shootdowns.count).toBeGreaterThan(20);
      expect(x.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
    }
  });

  it('an idle vCPU is in lazy TLB mode: shootdowns skip it without waking it, and it flushes before it runs again', async () => {
    // Both vCPUs sleep 90 of every 100 µs and shoot down whenever they run: the other one is
    // mostly idle. should_flush_tlb skips it; with NPT off the flush on leaving lazy mode is a
    // MOV CR3 that exits (shadow paging), and still comes before any access.
    const o = {
      cores: 2,
      vms: 1,
      vcpus: 2,
      until: '2ms',
      hltEvery: '100us',
      hltFor: '90us',
      shootdownEvery: '5us',
    };
    // Hyper-V's flush hypercall leaves lazy CPUs out of its processor mask too.
    for (const [npt, hypervTlbFlush] of [
      [true, false],
      [false, false],
      [true, true],
    ] as const) {
      const x = await run(vmYaml({ ...o, npt, hypervTlbFlush, workingSetPages: 4 }));
      const os = x.r.actors.flatMap((a) => {
        const st = a.stats as { os?: { lazySkips: number; lazyFlushes: number; flushIpisHandled: number } };
        return st.os ? [st.os] : [];
      });
      expect(os).toHaveLength(2);
      const skipped = os.reduce((n, s) => n + s.lazySkips, 0);
      expect(x.m.shootdowns.lazySkippedTargets).toBe(skipped);
      expect(skipped, `npt ${npt}, Hyper-V ${hypervTlbFlush}`).toBeGreaterThan(x.m.shootdowns.count / 2);
      expect(os.reduce((n, s) => n + s.lazyFlushes, 0)).toBeGreaterThan(0);
      // Only flush IPIs are sent, and none woke a halted vCPU.
      for (const v of x.m.scheduler.vcpus)
        expect(v.wakeups, `npt ${npt}, Hyper-V ${hypervTlbFlush}, vCPU ${v.vcpu}`).toBe(0);
      expect(x.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
      // A skipped target answers at once: no shootdown waits for a sleeper's 90 µs.
      expect(x.m.shootdowns.latencyNs.max).toBeLessThan(20_000);
    }
  });

  it('a vCPU whose guest runs another process is left out (loaded_mm): not kicked, and it flushes when it switches back', async () => {
    // Two guest processes on each of four vCPUs, switching with NOFLUSH CR3 writes; every vCPU
    // shoots down every 5 µs. A target on the other process is neither kicked nor waited on.
    const yaml = (npt: boolean) => `name: t
seed: 1
until: 1ms
hardware: { cores: 4, spec: eraps-amd }
host: { npt: ${npt}, policy: linux-7.0 }
vms:
  - name: vm0
    vcpus: 4
    guest:
      processes: 2
      contextSwitch: { every: 7us, using: mov-cr3-noflush }
      shootdown: { every: 5us, pages: 1 }
      workingSetPages: 4
`;
    for (const npt of [true, false]) {
      const x = await run(yaml(npt));
      const os = x.r.actors.flatMap((a) => {
        const st = a.stats as {
          os?: { otherMmSkips: number; otherMmFlushes: number; shootdownLatencies: { targets: number }[] };
        };
        return st.os ? [st.os] : [];
      });
      const skipped = os.reduce((n, s) => n + s.otherMmSkips, 0);
      const sent = os.reduce((n, s) => n + s.shootdownLatencies.reduce((b, l) => b + l.targets, 0), 0);
      expect(x.m.shootdowns.otherMmSkippedTargets).toBe(skipped);
      expect(skipped, `npt ${npt}`).toBeGreaterThan(0);
      // The shootdown table says how many of the three targets a shootdown interrupted.
      const [group] = x.m.shootdowns.byTargets;
      expect(group!.targets).toBe(3);
      expect(group!.interruptedMean).toBeGreaterThan(0);
      expect(group!.interruptedMean).toBeLessThan(3);
      expect(
        os.reduce((n, s) => n + s.otherMmFlushes, 0),
        `npt ${npt}`,
      ).toBeGreaterThan(0);
      // The host kicks only the targets their guest interrupts (the last shootdown's may be late).
      expect(x.m.scheduler.kicks.interrupt + skipped, `npt ${npt}`).toBeLessThanOrEqual(sent + 3);
      expect(x.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
      expect(x.m.tlb.staleHits).toBe(0);
    }
  });

  it('no kick is wasted on a target its guest skips, even while its HLT exit is on the way to the host', async () => {
    // migration-uneven with shootdowns, seed 1: three flushes reach a host between a vCPU
    // entering its idle loop and its HLT exit arriving. Asking the guest (is_lazy) instead of
    // waiting for the exit, the host kicks none of them: every target is kicked, skipped or
    // PV-deferred, never kicked and skipped.
    const s = loadScenario('scenarios/overcommit/migration-uneven.yaml', {
      sets: ['vms.0.guest.shootdown.every=1ms'],
    });
    const r = await runSimulation({ ...s, seed: 1 }, { workers: 1, inProcess: true });
    const os = r.actors.flatMap((a) => {
      const st = a.stats as {
        os?: { lazySkips: number; otherMmSkips: number; shootdownLatencies: { targets: number }[] };
      };
      return st.os ? [st.os] : [];
    });
    const sched = r.actors.flatMap((a) => {
      const st = a.stats as { sched?: HostSchedStats };
      return st.sched ? [st.sched] : [];
    });
    const sent = os.reduce((n, o) => n + o.shootdownLatencies.reduce((b, l) => b + l.targets, 0), 0);
    const skipped = os.reduce((n, o) => n + o.lazySkips + o.otherMmSkips, 0);
    const kicked = sched.reduce((n, x) => n + x.kicks.interrupt, 0);
    const deferred = sched.reduce((n, x) => n + x.threads.reduce((b, t) => b + t.deferredFlushes, 0), 0);
    expect(sent).toBeGreaterThan(1000);
    expect(skipped).toBeGreaterThan(sent / 2);
    expect(kicked + skipped + deferred).toBeLessThanOrEqual(sent);
  });

  it('with shadow paging, the same-CR3 flush on leaving the idle loop gets no CLEAR_RAP from linux-7.0; always clears', async () => {
    const file = 'scenarios/vm/npt-off-lazy-tlb-linux-7.0.yaml';
    const [merged, always] = await Promise.all(
      [[], ['host.policy=always']].map((sets) =>
        runSimulation(loadScenario(file, { sets }), { workers: 1, inProcess: true }),
      ),
    );
    expect(merged!.violations.map((v) => v.property)).toContain('rap-promised-clear');
    const v = merged!.violations.find((x) => x.property === 'rap-promised-clear')!;
    expect(v.because).toMatch(/TLB out of date after lazy TLB mode/);
    expect(v.because).toMatch(/same CR3 → kvm_invalidate_pcid → KVM_REQ_TLB_FLUSH_CURRENT/);
    // The waking process consumes its own entries: no other context's.
    expect(v.consumer.process).toBe(v.producer.process);
    expect(merged!.violationCounts['tlb-stale']).toBe(0);
    expect(always!.violations).toEqual([]);
  });

  it('under overcommit a vCPU does no work while it is out: operations never exceed its run time', async () => {
    const oc = await run(
      vmYaml({
        cores: 2,
        vms: 2,
        vcpus: 2,
        until: '5ms',
        hltEvery: '200us',
        shootdownEvery: '0',
        slice: '30us',
      }),
    );
    const opNs = 10; // workloadOp: 30 cycles at 3 GHz
    for (const vm of oc.m.work.byVm) {
      const runNs = oc.m.scheduler.vcpus.filter((v) => v.vm === vm.vm).reduce((n, v) => n + v.runNs, 0);
      expect(vm.ops * opNs, `${vm.vm}: ${vm.ops} ops in ${runNs} ns of run time`).toBeLessThanOrEqual(runNs);
    }
  });
});

describe('IBPB on vCPU switch: 2 VMs of 1 vCPU on 1 core', () => {
  const one = { cores: 1, vms: 2, vcpus: 1, until: '3ms', slice: '500us' };

  it('ibpbOnVcpuSwitch with ibpbClearsRap: an IBPB at every vCPU switch, each a RAP clear', async () => {
    const { m } = await run(vmYaml(one));
    expect(m.scheduler.vcpuSwitches).toBeGreaterThan(2);
    expect(m.scheduler.ibpbs).toBe(m.scheduler.vcpuSwitches);
    expect(m.rap.clears.ibpb).toBe(m.scheduler.ibpbs);
  });

  it('without ibpbClearsRap the IBPBs are issued but clear nothing', async () => {
    const { m } = await run(vmYaml({ ...one, ibpbClearsRap: false }));
    expect(m.scheduler.ibpbs).toBeGreaterThan(2);
    expect(m.rap.clears.ibpb).toBeUndefined();
  });

  it('with host.ibpbOnVcpuSwitch off: the same switches, no IBPB', async () => {
    const { m } = await run(vmYaml({ ...one, ibpbOnVcpuSwitch: false }));
    expect(m.scheduler.vcpuSwitches).toBeGreaterThan(2);
    expect(m.scheduler.ibpbs).toBe(0);
    expect(m.rap.clears.ibpb).toBeUndefined();
  });
});

describe('overcommit results do not depend on the worker count', () => {
  const base = { cores: 4, vms: 2, vcpus: 4, until: '1ms', slice: '200us' };

  /** The run exercised what crosses partitions: preemption kicks, flush IPIs, deferred flushes. */
  function exercised(m: Metrics): void {
    expect(m.scheduler.kicks.preempt).toBeGreaterThan(0);
    expect(m.shootdowns.count).toBeGreaterThan(20);
    expect(m.shootdowns.pvDeferredTargets).toBeGreaterThan(0);
  }

  // Real piscina threads through the compiled CLI (`npm test` builds first), as determinism.test.ts
  // runs the bundled scenarios: threads that load the TypeScript sources take seconds each to start.
  it('exit-based, PV TLB flush on one VM: rapsim run --workers 1, 2 and 4 (piscina threads)', async () => {
    const file = writeTempScenario('overcommit.yaml', vmYaml({ ...base, pvTlbFlush: [true, false] }));
    const runs = await Promise.all([1, 2, 4].map((n) => rapsimJson(['run', file, '--workers', String(n)])));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.report.workers).toBe([1, 2, 4][i]);
    });
    const [one, ...more] = runs.map(
      ({ report: { traceDigest, events, simulatedNs, violationCounts, metrics } }) => ({
        traceDigest,
        events,
        simulatedNs,
        violationCounts,
        metrics,
      }),
    );
    exercised(one!.metrics as Metrics);
    for (const other of more) expect(other).toEqual(one);
  });

  /** The run on 1, 2 and 4 partitions (in-process: the window protocol and cross-partition links). */
  async function partitioned(text: string) {
    const s = parseScenarioText(text, 'test.yaml');
    const runs = [];
    for (const workers of [1, 2, 4]) {
      const r = await runSimulation(s, { workers, inProcess: true });
      expect(r.topology.partitions).toBe(workers);
      runs.push({
        traceDigest: r.traceDigest,
        events: r.events,
        simulatedPs: r.simulatedPs,
        violationCounts: r.violationCounts,
        metrics: collectMetrics(r.actors, r.topology.timing, r.simulatedPs),
      });
    }
    return runs;
  }

  it('guests that sleep, shootdowns skipping them in lazy TLB mode (IPIs and Hyper-V): 1, 2 and 4 partitions', async () => {
    for (const hypervTlbFlush of [false, true]) {
      const [one, ...more] = await partitioned(
        vmYaml({
          ...base,
          pvTlbFlush: true,
          hypervTlbFlush,
          hltEvery: '100us',
          hltFor: '60us',
          shootdownEvery: '20us',
          migration: 'off',
        }),
      );
      expect(one!.metrics.shootdowns.lazySkippedTargets, `Hyper-V ${hypervTlbFlush}`).toBeGreaterThan(0);
      for (const other of more) expect(other).toEqual(one);
    }
  });

  // The same window protocol and cross-partition links, without threads: the sources as they are.
  it('AVIC, PV TLB flush on both: 1, 2 and 4 partitions', async () => {
    const [one, ...more] = await partitioned(vmYaml({ ...base, avic: true, pvTlbFlush: true }));
    exercised(one!.metrics);
    for (const other of more) expect(other).toEqual(one);
  });
});
