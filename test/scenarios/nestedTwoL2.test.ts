import { describe, expect, it } from 'vitest';
import { collectMetrics } from '../../src/report/metrics.js';
import { loadScenario, parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';
import { nestedScenario } from '../helpers/nestedScenario.js';

/**
 * Several L2 VMs per L1 (docs/domain.md §3, nested SVM): L1's scheduler alternates between its
 * L2s, L0 refills its one vmcb02 from each vmcb12, and L0's policy decides CLEAR_RAP on every
 * emulated nested transition whichever L2 is involved.
 */
async function run(policy: string) {
  const s = loadScenario(`scenarios/vm/nested-two-l2-${policy}.yaml`);
  const r = await runSimulation(s, { workers: 1, inProcess: true });
  return { r, m: collectMetrics(r.actors, r.topology.timing, r.simulatedPs) };
}

describe('an L1 running two L2 VMs', () => {
  it('runs both L2s: each does work, and L1 executes a nested VMRUN for each L2 entry', async () => {
    const { m } = await run('linux-7.0');
    const work = new Map(m.work.byVm.map((v) => [v.vm, v.ops]));
    expect(work.get('l2a')).toBeGreaterThan(1000);
    expect(work.get('l2b')).toBeGreaterThan(1000);
    // Each L2 halts now and then; L1 handles the reflected HLT and enters the other L2.
    expect(m.exits['l2:hlt']).toBeGreaterThan(10);
    expect(m.exits.vmrun).toBeGreaterThanOrEqual(m.exits['l2:hlt']!);
  });

  it('linux-7.0 sets CLEAR_RAP on every emulated transition: no rap-nested', async () => {
    const { r, m } = await run('linux-7.0');
    expect(r.violationCounts['rap-nested']).toBe(0);
    expect(r.failing).toEqual([]);
    expect(m.clearRapVmruns).toBeGreaterThanOrEqual(m.exits.vmrun!);
  });

  it('naive never does: RETs of one level consume the other level’s entries (rap-nested)', async () => {
    const { r, m } = await run('naive');
    expect(r.violationCounts['rap-nested']).toBeGreaterThan(0);
    expect(m.clearRapVmruns).toBe(0);
  });
});

describe("L1's scheduler timer", () => {
  /** Two L2 VMs on one L1 vCPU, neither of which ever exits (NPT on, no HLT), 100 µs slices. */
  const text = nestedScenario({
    name: 'l1-timer',
    vcpus: 1,
    until: '1ms',
    slice: '100us',
    l2Vms: `        - { name: l2a, vcpus: 1, cpuid: { eraps: true }, guest: { processes: 2, contextSwitch: { every: 50us } } }
        - { name: l2b, vcpus: 1, cpuid: { eraps: true }, guest: { processes: 2, contextSwitch: { every: 50us } } }
`,
  });

  it('ends an L2 that never exits at its slice (a nested EXIT_INTR), so both L2s run', async () => {
    const r = await runSimulation(parseScenarioText(text, 'l1-timer.yaml'), { workers: 1, inProcess: true });
    const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
    const work = new Map(m.work.byVm.map((v) => [v.vm, v.ops]));
    // Without L1's timer l2a kept the vCPU for the whole run and l2b did nothing.
    expect(work.get('l2b')).toBeGreaterThan(0.3 * work.get('l2a')!);
    // A switch every 100 µs slice: ≈ 9 in 1 ms, each an L1 timer that kicked the running L2 out.
    expect(m.exits['l2:intr']).toBeGreaterThanOrEqual(8);
    expect(m.exits['l2:intr']).toBeLessThanOrEqual(10);
    expect(m.exits.vmrun).toBe(m.exits['l2:intr']! + 1);
  });
});

describe("an L2's pin", () => {
  /** L1 vCPUs 0 and 1 on cores 0 and 1; the L2's one vCPU on the L1 vCPU `pin` names. */
  async function nestedClearsByCore(pin: number) {
    const text = `name: l2-pin
seed: 1
until: 300us
hardware: { cores: 2, spec: eraps-amd }
host: { npt: true, policy: linux-7.0 }
vms:
  - name: l1
    vcpus: 2
    pin: [0, 1]
    cpuid: { eraps: true }
    guest: { processes: 2 }
    nested:
      vms: [ { name: l2, vcpus: 1, pin: [${pin}], cpuid: { eraps: true }, guest: { processes: 2 } } ]
`;
    const r = await runSimulation(parseScenarioText(text, 'l2-pin.yaml'), { workers: 1, inProcess: true });
    // CLEAR_RAP on VMRUN happens only where L0 emulates L1's nested VMRUN: on the core running L2.
    return r.actors
      .filter((a) => a.id.startsWith('pcpu:'))
      .map(
        (a) => (a.stats as { core: { clears: Record<string, number> } }).core.clears['vmrun-clear-rap'] ?? 0,
      );
  }

  it('runs the L2 vCPU on the L1 vCPU it names, not on the L1 vCPU of the same index', async () => {
    const [onCore0, onCore1] = await nestedClearsByCore(1);
    expect(onCore0).toBe(0);
    expect(onCore1).toBeGreaterThan(0);
    const [unpinned0, unpinned1] = await nestedClearsByCore(0);
    expect(unpinned0).toBeGreaterThan(0);
    expect(unpinned1).toBe(0);
  });
});

describe('interrupts for an L1 vCPU while it runs its L2', () => {
  /**
   * Two L1 vCPUs, each running an L2 vCPU; L1's own processes shoot down every 100 µs. A flush
   * IPI for an L1 vCPU that is in L2 kicks the L2 out, and L0 emulates a nested #VMEXIT with
   * EXIT_INTR (svm_check_nested_events: KVM as L1 intercepts INTR) so that L1 takes it at once.
   */
  function text(avic: boolean, policy: string) {
    return `name: l1-interrupts
seed: 1
until: 2ms
hardware: { cores: 2, spec: eraps-amd }
host: { npt: true, avic: ${avic}, policy: ${policy} }
vms:
  - name: l1
    vcpus: 2
    cpuid: { eraps: true }
    guest: { processes: 1, contextSwitch: { every: 0 }, shootdown: { every: 100us, pages: 1 } }
    nested:
      vms:
        - name: l2
          vcpus: 2
          cpuid: { eraps: true }
          guest: { processes: 2, contextSwitch: { every: 30us }, hlt: { every: 200us, for: 50us } }
`;
  }

  for (const avic of [false, true]) {
    it(`reach L1 by a nested #VMEXIT (EXIT_INTR) right away, not at the L2's next exit${avic ? ' (AVIC too)' : ''}`, async () => {
      const s = parseScenarioText(text(avic, 'linux-7.0'), 'l1-interrupts.yaml');
      const r = await runSimulation(s, { workers: 1, inProcess: true });
      const m = collectMetrics(r.actors, r.topology.timing, r.simulatedPs);
      // L1's processes run only while its L2 halts (a quarter of the time).
      expect(m.shootdowns.count).toBeGreaterThan(10);
      expect(m.exits['l2:intr'] ?? 0).toBeGreaterThan(0);
      // The nested exit round trip (13,000 cycles ≈ 4.3 µs) bounds the wait, not the L2's HLT.
      expect(m.shootdowns.latencyNs.p99).toBeLessThan(15_000);
      expect(r.violationCounts['tlb-stale'] ?? 0).toBe(0);
      expect(r.violationCounts['rap-nested'] ?? 0).toBe(0);
    });
  }

  it('the emulated nested #VMEXIT is a nested transition like any other: naive leaves L2 entries to L1 (rap-nested)', async () => {
    const s = parseScenarioText(text(false, 'naive'), 'l1-interrupts.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true });
    expect(r.violationCounts['rap-nested']).toBeGreaterThan(0);
  });
});
