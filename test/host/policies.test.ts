import { describe, expect, it } from 'vitest';
import { type Decision, type ErapsPolicy, POLICIES, policyByName } from '../../src/host/policies/index.js';
import { POLICIES as SCENARIO_POLICIES } from '../../src/scenario/host.js';

/** The policies of docs/domain.md §3 ("The policies rapsim compares"), decision by decision. */

const B = [false, true] as const;

/** Every decision a policy can make, over every input, with a label for failure messages. */
function allDecisions(p: ErapsPolicy): [string, Decision][] {
  const out: [string, Decision][] = [];
  for (const npt of B)
    for (const hostHasEraps of B)
      out.push([`advertise(npt=${npt},host=${hostHasEraps})`, p.advertise({ npt, hostHasEraps })]);
  for (const hostHasEraps of B)
    for (const guestHasEraps of B)
      out.push([
        `allowLargerRap(${hostHasEraps},${guestHasEraps})`,
        p.allowLargerRap({ hostHasEraps, guestHasEraps }),
      ]);
  for (const t of ['cr3-dirty', 'flush-tlb-guest'] as const)
    out.push([`pendingClear(${t})`, p.pendingClear(t)]);
  for (const pending of B)
    for (const guestHasEraps of B)
      out.push([
        `clearRapAtVmrun(${pending},${guestHasEraps})`,
        p.clearRapAtVmrun({ pending, guestHasEraps }),
      ]);
  for (const a of B)
    for (const c of B)
      for (const h of B) {
        const n = p.nestedVmrun({ vmcb12AllowLargerRap: a, vmcb12ClearRap: c, hostHasEraps: h });
        out.push([`nestedVmrun(${a},${c},${h}).allowLargerRap`, n.allowLargerRap]);
        out.push([`nestedVmrun(${a},${c},${h}).clearRap`, n.clearRap]);
      }
  out.push(['nestedVmexit()', p.nestedVmexit()]);
  return out;
}

const p = (name: string) => policyByName(name);

describe('policy registry', () => {
  it('knows exactly the scenario policy names', () => {
    expect(Object.keys(POLICIES).sort()).toEqual([...SCENARIO_POLICIES].sort());
    for (const name of SCENARIO_POLICIES) expect(policyByName(name).name).toBe(name);
  });

  it('refuses an unknown policy, listing the known ones', () => {
    expect(() => policyByName('xen')).toThrow(/unknown policy "xen".*hide.*naive.*v6.*linux-7\.0.*always/);
  });

  for (const name of SCENARIO_POLICIES) {
    it(`${name}: every decision names a non-empty step, and the policy a source`, () => {
      const pol = p(name);
      expect(pol.source.trim()).not.toBe('');
      for (const [label, d] of allDecisions(pol)) {
        expect(typeof d.value, label).toBe('boolean');
        expect(d.step.trim().length, label).toBeGreaterThan(0);
      }
    });
  }
});

describe('hide', () => {
  const pol = p('hide');
  it('advertises nothing and never touches erap_ctl', () => {
    for (const [label, d] of allDecisions(pol)) expect(d.value, label).toBe(false);
  });
});

describe('naive', () => {
  const pol = p('naive');
  it('advertises ERAPS whenever the host has it, NPT on or off', () => {
    for (const npt of B) {
      expect(pol.advertise({ npt, hostHasEraps: true }).value).toBe(true);
      expect(pol.advertise({ npt, hostHasEraps: false }).value).toBe(false);
    }
  });
  it('always sets ALLOW_LARGER_RAP, whatever the guest CPUID says (vmcb01 and vmcb02)', () => {
    for (const h of B)
      for (const g of B) expect(pol.allowLargerRap({ hostHasEraps: h, guestHasEraps: g }).value).toBe(true);
    for (const a of B)
      for (const c of B)
        for (const h of B)
          expect(
            pol.nestedVmrun({ vmcb12AllowLargerRap: a, vmcb12ClearRap: c, hostHasEraps: h }).allowLargerRap
              .value,
          ).toBe(true);
  });
  it('never sets CLEAR_RAP: not at VMRUN, not on nested VMRUN or #VMEXIT', () => {
    for (const pending of B)
      for (const g of B) expect(pol.clearRapAtVmrun({ pending, guestHasEraps: g }).value).toBe(false);
    for (const a of B)
      for (const c of B)
        for (const h of B)
          expect(
            pol.nestedVmrun({ vmcb12AllowLargerRap: a, vmcb12ClearRap: c, hostHasEraps: h }).clearRap.value,
          ).toBe(false);
    expect(pol.nestedVmexit().value).toBe(false);
  });
});

describe('v6', () => {
  const pol = p('v6');
  it('advertises ERAPS only with NPT on (and a host that has it)', () => {
    expect(pol.advertise({ npt: true, hostHasEraps: true }).value).toBe(true);
    expect(pol.advertise({ npt: false, hostHasEraps: true }).value).toBe(false);
    expect(pol.advertise({ npt: true, hostHasEraps: false }).value).toBe(false);
    expect(pol.advertise({ npt: false, hostHasEraps: false }).value).toBe(false);
    expect(pol.advertise({ npt: false, hostHasEraps: true }).step).toMatch(/NPT/);
  });
  it("sets ALLOW_LARGER_RAP from the host capability (kvm_cpu_cap_has), even when the guest's CPUID lacks ERAPS", () => {
    expect(pol.allowLargerRap({ hostHasEraps: true, guestHasEraps: false }).value).toBe(true);
    expect(pol.allowLargerRap({ hostHasEraps: true, guestHasEraps: true }).value).toBe(true);
    expect(pol.allowLargerRap({ hostHasEraps: false, guestHasEraps: true }).value).toBe(false);
    expect(pol.allowLargerRap({ hostHasEraps: false, guestHasEraps: false }).value).toBe(false);
    expect(pol.allowLargerRap({ hostHasEraps: true, guestHasEraps: false }).step).toMatch(/kvm_cpu_cap_has/);
  });
  it('handles no emulated or intercepted flush: nothing pends, no CLEAR_RAP at an ordinary VMRUN', () => {
    expect(pol.pendingClear('cr3-dirty').value).toBe(false);
    expect(pol.pendingClear('flush-tlb-guest').value).toBe(false);
    for (const pending of B)
      for (const g of B) expect(pol.clearRapAtVmrun({ pending, guestHasEraps: g }).value).toBe(false);
  });
  it('sets CLEAR_RAP on nested VMRUN (vmcb02) and nested #VMEXIT (vmcb01)', () => {
    for (const a of B)
      for (const c of B)
        for (const h of B) {
          const n = pol.nestedVmrun({ vmcb12AllowLargerRap: a, vmcb12ClearRap: c, hostHasEraps: h });
          expect(n.clearRap.value).toBe(true);
          expect(n.allowLargerRap.value).toBe(h);
        }
    expect(pol.nestedVmexit().value).toBe(true);
    expect(pol.nestedVmexit().step).toMatch(/vmcb01/);
  });
});

describe('linux-7.0', () => {
  const pol = p('linux-7.0');
  it('advertises ERAPS whenever the host has it, NPT on or off', () => {
    for (const npt of B) {
      expect(pol.advertise({ npt, hostHasEraps: true }).value).toBe(true);
      expect(pol.advertise({ npt, hostHasEraps: false }).value).toBe(false);
    }
  });
  it("step 1: ALLOW_LARGER_RAP follows the guest's CPUID, not the host capability", () => {
    for (const h of B)
      for (const g of B) {
        const d = pol.allowLargerRap({ hostHasEraps: h, guestHasEraps: g });
        expect(d.value).toBe(g);
        expect(d.step).toMatch(/step 1/);
      }
  });
  it('step 2: a CR3 marked dirty is a pending clear', () => {
    const d = pol.pendingClear('cr3-dirty');
    expect(d.value).toBe(true);
    expect(d.step).toMatch(/step 2/);
  });
  it('step 3: svm_flush_tlb_guest marks a pending clear', () => {
    const d = pol.pendingClear('flush-tlb-guest');
    expect(d.value).toBe(true);
    expect(d.step).toMatch(/step 3/);
  });
  it('step 4: CLEAR_RAP only when a clear is pending AND the guest has ERAPS', () => {
    for (const pending of B)
      for (const g of B) {
        const d = pol.clearRapAtVmrun({ pending, guestHasEraps: g });
        expect(d.value, `pending=${pending} guest=${g}`).toBe(pending && g);
        expect(d.step).toMatch(/step 4/);
      }
  });
  it('step 8: vmcb02 = (vmcb12 & ALLOW_LARGER_RAP) | CLEAR_RAP; #VMEXIT sets vmcb01 CLEAR_RAP', () => {
    for (const a of B)
      for (const c of B)
        for (const h of B) {
          const n = pol.nestedVmrun({ vmcb12AllowLargerRap: a, vmcb12ClearRap: c, hostHasEraps: h });
          expect(n.allowLargerRap.value, `vmcb12 allow=${a} host=${h}`).toBe(a);
          expect(n.clearRap.value).toBe(true);
          expect(n.allowLargerRap.step).toMatch(/step 8/);
          expect(n.clearRap.step).toMatch(/step 8/);
        }
    expect(pol.nestedVmexit().value).toBe(true);
    expect(pol.nestedVmexit().step).toMatch(/step 8/);
  });
});

describe('always', () => {
  const pol = p('always');
  it('advertises ERAPS whenever the host has it', () => {
    for (const npt of B) expect(pol.advertise({ npt, hostHasEraps: true }).value).toBe(true);
  });
  it('sets CLEAR_RAP at every VMRUN, pending or not, and on every nested transition', () => {
    for (const pending of B)
      for (const g of B) expect(pol.clearRapAtVmrun({ pending, guestHasEraps: g }).value).toBe(true);
    for (const a of B)
      for (const c of B)
        for (const h of B) {
          const n = pol.nestedVmrun({ vmcb12AllowLargerRap: a, vmcb12ClearRap: c, hostHasEraps: h });
          expect(n.clearRap.value).toBe(true);
          // §3 nested: KVM must take ALLOW_LARGER_RAP for L2 from L1's vmcb12.
          expect(n.allowLargerRap.value).toBe(a);
        }
    expect(pol.nestedVmexit().value).toBe(true);
  });
  it('records a pending clear for CR3-dirty and guest flushes', () => {
    expect(pol.pendingClear('cr3-dirty').value).toBe(true);
    expect(pol.pendingClear('flush-tlb-guest').value).toBe(true);
  });
});
