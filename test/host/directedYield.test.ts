import { describe, expect, it } from 'vitest';
import { type DyView, directedYieldTarget } from '../../src/host/directedYield.js';

/** kvm_vcpu_on_spin's candidate rules (src/host/directedYield.ts), on SVM. */

const view = (vcpu: number, state: DyView['state'], vm = 0): DyView => ({
  actor: 100 + vm * 10 + vcpu,
  vm,
  vcpu,
  state,
  pcpu: 0,
});
const me = { vm: 0, vcpu: 1 };

describe('directed yield after a PAUSE exit (kvm_vcpu_on_spin)', () => {
  it('from kernel mode: a vCPU preempted in kernel mode, or woken and not yet run; never one preempted in user mode', () => {
    expect(directedYieldTarget(me, [view(0, 'user'), view(2, 'none')], true, 0)).toBeUndefined();
    expect(directedYieldTarget(me, [view(0, 'user'), view(2, 'kernel')], true, 0)?.vcpu).toBe(2);
    expect(directedYieldTarget(me, [view(0, 'woken')], true, 0)?.vcpu).toBe(0);
  });

  it('from user mode a vCPU preempted in user mode will do', () => {
    expect(directedYieldTarget(me, [view(0, 'user')], false, 0)?.vcpu).toBe(0);
  });

  it('never itself, another VM, a running or halted vCPU', () => {
    const others = [view(1, 'kernel'), view(0, 'kernel', 1), view(2, 'none'), view(3, 'none')];
    expect(directedYieldTarget(me, others, true, 0)).toBeUndefined();
  });

  it('looks in vCPU index order after the last boosted vCPU, wrapping around, skipping the spinner', () => {
    const all = [view(0, 'kernel'), view(2, 'kernel'), view(3, 'kernel')];
    // last_boosted_vcpu 0 (its initial value): vCPU 1 is the spinner, so 2.
    expect(directedYieldTarget(me, all, true, 0)?.vcpu).toBe(2);
    // After 2 was boosted: 3; after 3: wrap to 0; the spinner's own place does not matter.
    expect(directedYieldTarget(me, all, true, 2)?.vcpu).toBe(3);
    expect(directedYieldTarget(me, all, true, 3)?.vcpu).toBe(0);
    expect(directedYieldTarget({ vm: 0, vcpu: 3 }, all, true, 0)?.vcpu).toBe(2);
  });
});
