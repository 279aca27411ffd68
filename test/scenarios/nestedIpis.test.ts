import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeContext, encodeContext, KERNEL_PROCESS } from '../../src/hw/context.js';
import { ObsKind, type VmrunObs } from '../../src/hw/observations.js';
import { collectMetrics } from '../../src/report/metrics.js';
import { loadScenario, parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';
import { nestedScenario } from '../helpers/nestedScenario.js';

/**
 * IPIs, INIT and TLB shootdowns inside an L2 (nested SVM, docs/domain.md §3). An L2 vCPU's
 * KVM_HC_SEND_IPI or ICR write is reflected to L1, whose KVM writes the interrupt into the target
 * L2 vCPU's vAPIC and kicks the L1 vCPU that runs it, through L0. That L1 vCPU leaves its L2 by a
 * nested #VMEXIT (EXIT_INTR), or wakes from HLT, and injects at its next VMRUN of the L2.
 */

/** One L1 of `vcpus` vCPUs running an L2 of as many (vCPU i on L1 vCPU i) with these scripts. */
function scenario(opts: { vcpus: number; l2Script: string; l1Guest?: string; until?: string }): string {
  return nestedScenario({
    name: 'nested-ipis',
    ...opts,
    l2Vms: `        - name: l2
          vcpus: ${opts.vcpus}
          cpuid: { eraps: true }
          guest:
            processes: 2
            contextSwitch: { every: 0 }
            script:
${opts.l2Script}
`,
  });
}

async function run(text: string) {
  const s = parseScenarioText(text, 'nested-ipis.yaml');
  const r = await runSimulation(s, { workers: 1, inProcess: true, trace: {} });
  return { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
}

/** When L0 entered L2 vCPU `vcpu` (VM index 1: the L2 of the only L1), in µs. */
function l2EntriesUs(r: Awaited<ReturnType<typeof run>>['r'], vcpu: number): number[] {
  const ctx = encodeContext({ world: 'guest', level: 2, vm: 1, view: vcpu, process: KERNEL_PROCESS });
  return r
    .trace!.observations.filter((o) => o.kind === ObsKind.VMRUN && (o.data as VmrunObs).ctx === ctx)
    .map((o) => o.t / 1e6);
}

describe('TLB shootdowns inside an L2', () => {
  it('complete, each flush IPI costing an L2 hypercall exit, a kick of L1 and a nested EXIT_INTR', async () => {
    const s = loadScenario('scenarios/vm/nested-l2-shootdowns.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true });
    const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
    expect(r.violationCounts['tlb-stale'] ?? 0).toBe(0);
    expect(r.failing).toEqual([]);
    expect(m.shootdowns.count).toBeGreaterThan(20);
    expect(m.shootdowns.byVm.map((v) => v.vm)).toEqual(['l2']);
    // One target each (the other L2 vCPU): one KVM_HC_SEND_IPI of the L2, reflected, and one
    // kick of L1's own (KVM_HC_SEND_IPI again, one level up) per shootdown.
    expect(m.exits['l2:vmmcall']).toBe(m.shootdowns.count);
    expect(m.exits.vmmcall).toBe(m.exits['l2:vmmcall']);
    // A kicked L1 vCPU that was running its L2 leaves it by a nested #VMEXIT.
    expect(m.exits['l2:intr']).toBeGreaterThan(0);
    // The L2's own should_flush_tlb still leaves out idle vCPUs and those on another mm, and
    // their L1 vCPUs are neither kicked nor woken for it: L0 kicks only for the others.
    const skipped = m.shootdowns.lazySkippedTargets + m.shootdowns.otherMmSkippedTargets;
    expect(skipped).toBeGreaterThan(0);
    expect(m.scheduler.kicks.interrupt).toBeLessThanOrEqual(m.shootdowns.count - skipped);
    // Two levels of exits: slower than the ≈ 4.3 µs nested round trip alone.
    expect(m.shootdowns.latencyNs.p50).toBeGreaterThan(4300);
  });

  it('with AVIC, L1 kicks without exits; an incomplete-IPI exit is L1’s, never an L2’s', async () => {
    // L1 idles in HLT between its L2's runs, so some kicks find their L1 vCPU not running.
    const sets = ['host.avic=true', 'vms.0.guest.hlt.every=20us', 'vms.0.guest.hlt.for=60us'];
    const s = parseScenarioText(
      readFileSync('scenarios/vm/nested-l2-shootdowns.yaml', 'utf8'),
      'scenarios/vm/nested-l2-shootdowns.yaml',
      { sets },
    );
    const r = await runSimulation(s, { workers: 1, inProcess: true });
    const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
    expect(m.shootdowns.count).toBeGreaterThan(20);
    // One per shootdown, and one per initiator for a shootdown still in flight at the end.
    expect(m.exits['l2:vmmcall']).toBeGreaterThanOrEqual(m.shootdowns.count);
    expect(m.exits['l2:vmmcall']).toBeLessThanOrEqual(m.shootdowns.count + 2);
    expect(m.exits.vmmcall ?? 0).toBe(0);
    expect(m.exits['l2:avic-incomplete-ipi'] ?? 0).toBe(0);
    expect(r.violationCounts['tlb-stale'] ?? 0).toBe(0);
  });

  it('give the same trace on one worker or one per core', async () => {
    const s = loadScenario('scenarios/vm/nested-l2-shootdowns.yaml');
    const one = await runSimulation(s, { workers: 1, inProcess: true });
    const two = await runSimulation(s, { workers: 2, inProcess: true });
    expect(two.traceDigest).toBe(one.traceDigest);
  });
});

describe('PV TLB flush offered by an L1 to its L2s', () => {
  /** Two L2 VMs share two L1 vCPUs in 30 µs slices: each L2 vCPU is often preempted in L1. */
  async function pv(on: boolean) {
    const text = nestedScenario({
      name: 'nested-pv',
      vcpus: 2,
      until: '1ms',
      slice: '30us',
      l2Vms: ['l2a', 'l2b']
        .map(
          (n) => `        - name: ${n}
          vcpus: 2
          pvTlbFlush: ${on}
          cpuid: { eraps: true }
          guest: { processes: 2, contextSwitch: { every: 50us }, shootdown: { every: 25us, pages: 1 } }
`,
        )
        .join(''),
    });
    const s = parseScenarioText(text, 'nested-pv.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true, trace: {} });
    return { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
  }

  it('defers the flush for a target L2 vCPU preempted in L1: no kick at the target, no wait', async () => {
    const on = await pv(true);
    const off = await pv(false);
    expect(on.r.violationCounts['tlb-stale'] ?? 0).toBe(0);
    expect(on.m.shootdowns.pvDeferredTargets).toBeGreaterThan(10);
    expect(off.m.shootdowns.pvDeferredTargets).toBe(0);
    // Every deferral is reported for the L2 vCPU (level 2), for tlb-stale's explanations.
    const deferrals = on.r
      .trace!.observations.filter((o) => o.kind === ObsKind.SHOOTDOWN_DEFERRED)
      .map((o) => o.data as { ctx: number; path: string })
      .filter((d) => d.path === 'pv');
    expect(deferrals).toHaveLength(on.m.shootdowns.pvDeferredTargets);
    expect(deferrals.every((d) => decodeContext(d.ctx).level === 2)).toBe(true);
    // Fewer nested EXIT_INTRs at the targets, and the initiators wait less for preempted targets.
    expect(on.m.exits['l2:intr']!).toBeLessThan(off.m.exits['l2:intr']!);
    expect(on.m.shootdowns.waitNs.preemptedWait).toBeLessThan(off.m.shootdowns.waitNs.preemptedWait);
  });
});

describe('IPIs inside an L2', () => {
  it('end an L2 vCPU’s HLT early (L1 wakes it and enters it), as on bare metal', async () => {
    const woken = await run(
      scenario({
        vcpus: 2,
        l2Script: `              0: [ { wait: 10us }, { ipi: { to: 1 } } ]
              1: [ { hlt: 100us }, { call: 2 }, { ret: 2 } ]`,
      }),
    );
    const after = l2EntriesUs(woken.r, 1).slice(1);
    // Entered once at boot, then again when the IPI arrived — long before its HLT would end.
    expect(after[0]).toBeGreaterThan(10);
    expect(after[0]).toBeLessThan(40);
    expect(woken.m.exits.vmmcall).toBe(1);
    const asleep = await run(
      scenario({
        vcpus: 2,
        l2Script: `              0: [ { wait: 10us } ]
              1: [ { hlt: 100us }, { call: 2 }, { ret: 2 } ]`,
      }),
    );
    expect(l2EntriesUs(asleep.r, 1)[1]).toBeGreaterThan(100);
  });

  it('to the sending L2 vCPU itself need no kick: L1’s KVM injects at its next VMRUN', async () => {
    const { m } = await run(
      scenario({
        vcpus: 2,
        l2Script: `              0: [ { wait: 10us }, { ipi: { to: 0 } }, { call: 2 }, { ret: 2 } ]
              1: [ { hlt: 50us } ]`,
      }),
    );
    expect(m.exits['l2:vmmcall']).toBe(1);
    expect(m.exits.vmmcall ?? 0).toBe(0);
  });
});

describe('an L1 vCPU halted in its own idle loop', () => {
  it('wakes when the HLT of an L2 vCPU it runs ends (the timer is L1’s), not at the end of its own HLT', async () => {
    const { r } = await run(
      scenario({
        vcpus: 1,
        l1Guest: ', hlt: { every: 2us, for: 100us }',
        l2Script: `              0: [ { hlt: 10us }, { call: 2 }, { ret: 2 }, { hlt: 10us } ]`,
        until: '150us',
      }),
    );
    const entries = l2EntriesUs(r, 0);
    // Boot, then the end of the 10 µs HLT (plus the nested exit it took to get there).
    expect(entries[1]).toBeGreaterThan(10);
    expect(entries[1]).toBeLessThan(30);
  });
});

describe('INIT inside an L2 (kvm_vcpu_reset in L1’s KVM)', () => {
  it('naive at both levels: no CLEAR_RAP anywhere, the L2’s RETs consume pre-INIT entries (rap-promised-clear)', async () => {
    const s = loadScenario('scenarios/vm/nested-init-naive.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true });
    expect(r.violationCounts['rap-promised-clear']).toBeGreaterThan(0);
    const v = r.violations.find((x) => x.property === 'rap-promised-clear')!;
    expect(v.consumer.level).toBe(2);
    expect(v.promise).toMatch(/INIT/);
    expect(v.because).toMatch(/kvm_vcpu_reset/);
    expect(v.because).toMatch(/L1 hypervisor/);
  });

  it('linux-7.0: the reset marks CR3 dirty for vmcb12, and L0 clears on the nested VMRUN anyway', async () => {
    const s = loadScenario('scenarios/vm/nested-init-linux-7.0.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true });
    expect(r.violationCounts['rap-promised-clear'] ?? 0).toBe(0);
    expect(r.failing).toEqual([]);
  });
});

describe('the nested study (scenarios/sweeps/nested-study.yaml), its key cells at seed 1', () => {
  async function cell(l0: string, l1: string, npt: boolean) {
    const file = 'scenarios/sweeps/nested-study.yaml';
    const text = readFileSync(file, 'utf8')
      .replace(/^seeds:.*$/m, '')
      .replace(/^matrix:[\s\S]*$/m, '');
    const sets = [`host.policy=${l0}`, `vms.0.nested.policy=${l1}`, `host.npt=${npt}`];
    const r = await runSimulation(parseScenarioText(text, file, { sets }), { workers: 1, inProcess: true });
    const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
    return { r, m };
  }

  it('naive L0 under an L2 that trusts ERAPS: L1 RETs consume L2 entries (rap-nested)', async () => {
    const { r, m } = await cell('naive', 'linux-7.0', true);
    expect(r.violationCounts['rap-nested']).toBeGreaterThan(0);
    expect(m.shootdowns.count).toBeGreaterThan(5);
  });

  it('linux-7.0 at both levels: clean, the L2’s shootdowns complete through L1', async () => {
    const { r, m } = await cell('linux-7.0', 'linux-7.0', false);
    expect(r.failing).toEqual([]);
    expect(r.violationCounts['rap-nested'] ?? 0).toBe(0);
    expect(r.violationCounts['rap-promised-clear'] ?? 0).toBe(0);
    expect(m.shootdowns.count).toBeGreaterThan(5);
  });

  it('naive L0 under an L2 that stuffs (L1 hides ERAPS): no entry crosses a level', async () => {
    const { r } = await cell('naive', 'hide', true);
    expect(r.violationCounts['rap-nested'] ?? 0).toBe(0);
  });
});
