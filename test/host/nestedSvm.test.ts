import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ObsKind, type VmrunObs } from '../../src/hw/observations.js';
import { parseScenarioText } from '../../src/scenario/load.js';
import { runSimulation } from '../../src/workers/runSimulation.js';

async function run(file: string, sets: string[] = []) {
  const s = parseScenarioText(readFileSync(file, 'utf8'), file, { sets });
  return runSimulation(s, { workers: 1, inProcess: true });
}

function stuffingCalls(r: Awaited<ReturnType<typeof run>>): number {
  return r.actors.reduce(
    (n, a) => n + ((a.stats as { core?: { stuffingCalls: number } }).core?.stuffingCalls ?? 0),
    0,
  );
}

function exits(r: Awaited<ReturnType<typeof run>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of r.actors) {
    for (const [k, v] of Object.entries(
      (a.stats as { kvm?: { exits: Record<string, number> } }).kvm?.exits ?? {},
    )) {
      out[k] = (out[k] ?? 0) + v;
    }
  }
  return out;
}

describe('nested SVM (docs/domain.md §3)', () => {
  it('naive: no CLEAR_RAP on nested transitions, so L1 and L2 consume each other’s entries (rap-nested)', async () => {
    const r = await run('scenarios/vm/nested-naive.yaml');
    const nested = r.violations.filter((v) => v.property === 'rap-nested');
    expect(nested.length).toBeGreaterThan(0);
    expect(nested.some((v) => v.consumer.level === 2 && v.producer.level === 1)).toBe(true);
    expect(nested.some((v) => v.consumer.level === 1 && v.producer.level === 2)).toBe(true);
    expect(nested[0]!.because).toMatch(/nested VMRUN/);
  });

  it('linux-7.0 and v6: CLEAR_RAP on every emulated nested VMRUN and #VMEXIT', async () => {
    for (const file of ['scenarios/vm/nested-linux-7.0.yaml', 'scenarios/vm/nested-v6.yaml']) {
      const r = await run(file);
      expect(r.violationCounts['rap-nested'], file).toBe(0);
      const clears = r.actors.reduce(
        (n, a) => n + ((a.stats as { kvm?: { clearRapVmruns: number } }).kvm?.clearRapVmruns ?? 0),
        0,
      );
      // L1's VMRUN of L2 (vmcb02) and the resume of L1 after the reflected HLT (vmcb01).
      expect(clears, file).toBeGreaterThanOrEqual(2);
    }
  });

  it('L1 executes VMRUN (exits to L0) and L2 exits are reflected to L1', async () => {
    const r = await run('scenarios/vm/nested-linux-7.0.yaml');
    const e = exits(r);
    expect(e.vmrun).toBeGreaterThanOrEqual(1);
    expect(e['l2:hlt']).toBe(1);
  });

  it('an L1 not given ERAPS fills the RAP itself on each nested #VMEXIT; one given ERAPS does not', async () => {
    const hidden = await run('scenarios/vm/nested-hide.yaml');
    expect(stuffingCalls(hidden)).toBe(32);
    // L1's RETs after L2 ran hit the stuffed entries: no L1 RET uses an L2 entry.
    expect(hidden.violations.filter((v) => v.consumer.level === 1 && v.producer.level === 2)).toEqual([]);
    expect(hidden.violationCounts['rap-nested']).toBe(0);
    const given = await run('scenarios/vm/nested-linux-7.0.yaml');
    expect(stuffingCalls(given)).toBe(0);
  });
});

describe('nested SVM and the TLB (nested_svm_transition_tlb_flush)', () => {
  it('L1 and L2 share the L1 vCPU’s ASID, and every nested VMRUN and #VMEXIT flushes it (TLB_CONTROL=3)', async () => {
    const file = 'scenarios/vm/nested-two-l2-linux-7.0.yaml';
    const s = parseScenarioText(readFileSync(file, 'utf8'), file, { sets: ['until=300us'] });
    const r = await runSimulation(s, { workers: 1, inProcess: true, trace: {} });
    const vmruns = r
      .trace!.observations.filter((o) => o.kind === ObsKind.VMRUN)
      .map((o) => o.data as VmrunObs);
    expect(vmruns.length).toBeGreaterThan(5);
    // After the first entry every VMRUN follows a nested transition (L1's VMRUN of an L2, or an
    // L2 exit reflected to L1): each flushes the one ASID both levels use.
    for (const v of vmruns.slice(1)) expect(v.tlbControl, v.vmcb).toBe(3);
  });
});

describe('flushes the host did for an L1 vCPU that resumes its L2', () => {
  it('reach L1 (which learns their page-table changes), not the L2 that the VMRUN enters', async () => {
    // L1 vCPUs preempted while in L2 (another VM shares the cores, 100 µs slices), PV TLB flush
    // on for L1, whose processes shoot down every 30 µs: some flushes are deferred to an entry
    // into L2.
    const text = `name: pv-nested
seed: 1
until: 3ms
hardware: { cores: 2, spec: eraps-amd }
host: { npt: true, policy: linux-7.0, scheduler: { slice: 100us } }
vms:
  - name: l1
    vcpus: 2
    pvTlbFlush: true
    cpuid: { eraps: true }
    guest: { processes: 1, contextSwitch: { every: 0 }, shootdown: { every: 30us, pages: 2 }, workingSetPages: 4 }
    nested:
      vms:
        - name: l2
          vcpus: 2
          cpuid: { eraps: true }
          guest: { processes: 1, contextSwitch: { every: 0 }, hlt: { every: 60us, for: 30us }, workingSetPages: 4 }
  - name: other
    vcpus: 2
    guest: { processes: 1, contextSwitch: { every: 0 } }
`;
    const s = parseScenarioText(text, 'pv-nested.yaml');
    const r = await runSimulation(s, { workers: 1, inProcess: true, trace: {} });
    const entries = r.trace!.entries;
    // Actor ids name the VM by its global index: l1 is VM 0, other VM 1, and l1's L2 VM 2.
    const idOf = (i: number) => r.actors[i]!.id;
    const learned = entries.filter((e) => e.type === 'DEFERRED_FLUSHES');
    expect(learned.length).toBeGreaterThan(0);
    for (const e of learned) expect(idOf(e.dst)).toMatch(/^vcpu:000:/);
    const intoL2 = entries.filter((e) => e.type === 'VMRUN' && idOf(e.dst).startsWith('vcpu:002:'));
    expect(intoL2.length).toBeGreaterThan(0);
    for (const e of intoL2) expect((e.data as { deferred?: unknown }).deferred).toBeUndefined();
    expect(r.violationCounts['tlb-stale'] ?? 0).toBe(0);
  });
});
