import type { VcpuThread } from './hostScheduler.js';

/**
 * What kvm_vcpu_on_spin reads of a vCPU (virt/kvm/kvm_main.c):
 * - `none`: not `ready` — running, or blocked in HLT;
 * - `woken`: runnable and not preempted (woken from HLT, not run since);
 * - `user` / `kernel`: preempted runnable, its guest at CPL 3 / CPL 0 then
 *   (vcpu->arch.preempted_in_kernel, snapshot at vcpu_put).
 */
export type DyState = 'none' | 'woken' | 'user' | 'kernel';

/** One vCPU as a spinner's pCPU sees it: exactly if it is homed nearby, else as last published. */
export interface DyView {
  actor: number;
  vm: number;
  vcpu: number;
  state: DyState;
  /** Actor index of the pCPU whose run queue holds it (where yield_to sets the buddy). */
  pcpu: number;
}

/** The directed-yield state of a vCPU thread now. */
export function dyStateOf(t: VcpuThread): DyState {
  if (t.state !== 'runnable') return 'none';
  if (!t.preempted) return 'woken';
  return t.preemptedInKernel ? 'kernel' : 'user';
}

/** A vCPU thread on pCPU `pcpu` as directed yield sees it now (what its pCPU publishes of it, too). */
export function dyViewOf(t: VcpuThread, pcpu: number): DyView {
  return { actor: t.actor, vm: t.kvm.p.vm, vcpu: t.kvm.p.vcpu, state: dyStateOf(t), pcpu };
}

/**
 * kvm_vcpu_on_spin (virt/kvm/kvm_main.c, Linux 6.12+), the half of a PAUSE exit that picks a
 * vCPU to yield to: the first vCPU of the spinner's VM, in index order after the VM's last boosted
 * vCPU (kvm->last_boosted_vcpu, 0 until a yield succeeds; "approximate a round-robin selection
 * by iterating over all vCPUs, starting at the last boosted vCPU"), the spinner skipped, that
 *  - is `ready` (runnable but not running: preempted, or woken and not yet run),
 *  - is not blocking (a halted vCPU with an interrupt pending is woken already here),
 *  - and, when the spinner was in kernel mode (pause_interception's in_kernel), was itself
 *    preempted in kernel mode, or was not preempted at all (woken). SVM has no "pending
 *    interrupt" shortcut: svm_dy_apicv_has_pending_interrupt returns false, so a target
 *    preempted in user mode with a flush IPI in its vAPIC is passed over.
 * yield_to then succeeds for it (not on a CPU, TASK_RUNNING, on its run queue): the spinner
 * yields (yield_task_fair) and the target becomes its run queue's next buddy, which that pCPU,
 * told to reschedule, picks at once if the target is eligible (PICK_BUDDY, Linux 6.12+).
 *
 * The caller records the target as the VM's last boosted vCPU when the yield happens.
 *
 * @example
 * const target = directedYieldTarget(spinner, views, true, lastBoosted.get(vm) ?? 0);
 * if (target && sched.contended) sched.yieldCurrent(now); // yield_task_fair + schedule()
 */
export function directedYieldTarget(
  me: { vm: number; vcpu: number },
  others: readonly DyView[],
  yieldToKernelMode: boolean,
  lastBoosted: number,
): DyView | undefined {
  return others
    .filter((o) => o.vm === me.vm && o.vcpu !== me.vcpu)
    .sort((a, b) => after(a.vcpu, lastBoosted) - after(b.vcpu, lastBoosted))
    .find((o) => o.state === 'woken' || o.state === 'kernel' || (o.state === 'user' && !yieldToKernelMode));
}

/** Distance after `from` in the VM's vCPU index order, wrapping: idx = (from + 1 + i) % n. */
function after(vcpu: number, from: number): number {
  const d = vcpu - from;
  return d > 0 ? d : d + 1_000_000;
}
