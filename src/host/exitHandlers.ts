import type { Time } from '../actors/time.js';
import type { FlushRequest } from '../hw/cpuSoftware.js';
import type { ExitReason, GuestExit, GuestIpi } from '../hw/exit.js';
import type { Instruction } from '../hw/instruction.js';
import { classifyMsr } from '../hw/msr.js';
import type { RapAction } from '../hw/spec.js';
import type { Hypervisor } from './hypervisor.js';
import { howReached, kvmHandleInvpcid, kvmPostSetCr0, kvmPostSetCr4, kvmSetCr3 } from './kvmX86.js';

/** What handling an exit costs and whether the vCPU then blocks (HLT). */
export interface ExitOutcome {
  /** Time in the handler, beyond the world switch. */
  cost: Time;
  /** For HLT: how long the vCPU blocks before KVM enters it again. */
  blockFor?: Time;
  /** For KVM_HC_SEND_IPI: the interrupts KVM delivers to the target vCPUs (kvm_pv_send_ipi). */
  send?: GuestIpi;
  /** For a Hyper-V flush hypercall: the targets whose TLBs KVM flushes (kvm_hv_flush_tlb). */
  hvFlush?: { targets: number[]; req: FlushRequest };
  /**
   * For PAUSE: KVM looks for a vCPU to yield to (kvm_vcpu_on_spin); `yieldToKernelMode` when the
   * spinner was in kernel mode, as pause_interception passes it.
   */
  onSpin?: { yieldToKernelMode: boolean };
  /** For an emulated nested VMRUN: when L1's timer interrupts the L2 it enters (GuestExit.l1TimerAt). */
  l1Timer?: Time;
}

type Handler = (kvm: Hypervisor, exit: GuestExit) => ExitOutcome;

/**
 * The exit dispatch table (svm_exit_handlers[]): exhaustive over {@link ExitReason}, so a new
 * exit reason does not compile until it has a handler.
 */
export const EXIT_HANDLERS: Record<ExitReason, Handler> = {
  'cr3-write': (kvm, exit) => intercepted(kvm, exit),
  'cr4-write': (kvm, exit) => intercepted(kvm, exit),
  'cr0-write': (kvm, exit) => intercepted(kvm, exit),
  invpcid: (kvm, exit) => intercepted(kvm, exit),
  invlpg: (kvm, exit) => intercepted(kvm, exit),
  // An x2APIC ICR write that sends an IPI (INIT here) is delivered by KVM (kvm_apic_send_ipi).
  msr: (kvm, exit) =>
    exit.ipi
      ? { cost: kvm.core.timing.exitHandler + kvm.core.timing.ipiSendPerTarget, send: exit.ipi }
      : intercepted(kvm, exit),
  npf: (kvm, exit) => emulated(kvm, exit),
  hlt: (kvm, exit) => {
    // kvm_emulate_halt → kvm_vcpu_block until the guest's timer (its `hlt` duration) fires.
    return { cost: kvm.core.timing.exitHandler, blockFor: exit.arg ?? 0 };
  },
  // A physical interrupt (the host's timer tick, a reschedule or kick IPI) took the vCPU out; the
  // host handles it and its scheduler decides what runs next (src/host/hostScheduler.ts).
  intr: (kvm) => ({ cost: kvm.core.timing.exitHandler }),
  // AVIC could not deliver an IPI the guest wrote to the ICR: its target was not running
  // (IsRunning clear in the physical APIC ID table). avic_incomplete_ipi_interception →
  // avic_kick_target_vcpus: KVM kicks (or wakes) the target; the interrupt is already in its IRR.
  'avic-incomplete-ipi': (kvm) => ({
    cost: kvm.core.timing.exitHandler + kvm.core.timing.ipiSendPerTarget,
  }),
  // KVM_HC_SEND_IPI (kvm_pv_send_ipi): one exit for the whole target bitmap; KVM delivers to
  // each target in turn (kvm_apic_set_irq → kvm_vcpu_kick).
  // Hyper-V's flush hypercall (kvm_hv_flush_tlb): queue the flush on every target and request
  // KVM_REQ_HV_TLB_FLUSH; running targets are kicked. Same per-target cost as sending IPIs.
  vmmcall: (kvm, exit) => {
    const targets = exit.ipi?.targets.length ?? exit.hvFlush?.targets.length ?? 0;
    return {
      cost: kvm.core.timing.exitHandler + targets * kvm.core.timing.ipiSendPerTarget,
      ...(exit.ipi ? { send: exit.ipi } : {}),
      ...(exit.hvFlush ? { hvFlush: exit.hvFlush } : {}),
    };
  },
  // The pause filter count ran out (PAUSE-loop exiting): pause_interception grows the vCPU's
  // window (grow_ple_window, done by KvmVcpu, which owns the VMCB) and calls kvm_vcpu_on_spin
  // with in_kernel = CPL 0; the host scheduler then yields the pCPU if a candidate exists.
  pause: (kvm, exit) => ({
    cost: kvm.core.timing.exitHandler,
    onSpin: { yieldToKernelMode: exit.cpl !== 3 },
  }),
  vmrun: (_kvm, _exit) => {
    throw new Error('nested VMRUN reached KVM, but nested SVM is not modelled yet');
  },
};

function intercepted(kvm: Hypervisor, exit: GuestExit): ExitOutcome {
  const insn = exit.insn!;
  const r = perform(kvm, insn);
  if (r) kvm.reportGuestAction(exit, r.action, 'intercepted', `${howReached(kvm, false)}: ${r.path}`);
  return { cost: kvm.core.timing.exitHandler };
}

/**
 * An instruction reached through the emulator (an NPF on MMIO, docs/domain.md §3): x86_emulate
 * decodes it and calls the same KVM paths as the intercepts (em_cr_write → kvm_set_cr3). The
 * emulator has no INVPCID handler: emulation fails, the guest gets #UD, and nothing is flushed.
 */
function emulated(kvm: Hypervisor, exit: GuestExit): ExitOutcome {
  const insn = exit.insn!;
  const cost = kvm.core.timing.emulator;
  if (insn.kind === 'invpcid' || insn.kind === 'ibpb') return { cost };
  const r = perform(kvm, insn);
  if (r) kvm.reportGuestAction(exit, r.action, 'emulated', `${howReached(kvm, true)}: ${r.path}`);
  return { cost };
}

/**
 * KVM's emulation of one guest instruction: updates the guest state KVM keeps and runs the
 * generic path. Returns the architectural action the guest performed (what it may believe in)
 * and the path KVM took, or undefined when the instruction had no RAP meaning.
 */
function perform(
  kvm: Hypervisor,
  insn: Instruction,
): { action: RapAction | 'ibpb'; path: string } | undefined {
  switch (insn.kind) {
    case 'mov-cr3':
      return { action: 'mov-cr3', path: kvmSetCr3(kvm, insn.pcid, insn.noflush) };
    case 'invpcid':
      return {
        action: `invpcid-${insn.type}` as RapAction,
        path: kvmHandleInvpcid(kvm, insn.type, insn.pcid),
      };
    case 'invlpg':
      kvm.request('TLB_FLUSH_CURRENT');
      return { action: 'invlpg', path: 'kvm_mmu_invlpg (no RAP meaning)' };
    case 'cr4': {
      const before = kvm.guestCr4[insn.bit];
      const after = insn.op === 'set' ? true : insn.op === 'clear' ? false : !before;
      kvm.guestCr4[insn.bit] = after;
      const path = kvmPostSetCr4(kvm, insn.bit, before, after);
      return { action: cr4Action(insn.bit, before, after), path };
    }
    case 'cr0': {
      const before = kvm.guestCr0[insn.bit];
      const after = insn.op === 'set' ? true : insn.op === 'clear' ? false : !before;
      kvm.guestCr0[insn.bit] = after;
      const path = kvmPostSetCr0(kvm, insn.bit, before, after);
      if (before === after) return undefined;
      return { action: insn.bit === 'pg' ? 'cr0-pg' : 'cr0-wp', path };
    }
    case 'wrmsr': {
      const kind = classifyMsr(insn.msr);
      return { action: kind, path: `kvm_set_msr: MSR ${insn.msr} emulated in software (no flush request)` };
    }
    case 'ibpb':
      return undefined;
  }
}

/** What a guest CR4 write architecturally is (the same rule CoreHw applies natively). */
function cr4Action(bit: keyof Hypervisor['guestCr4'], before: boolean, after: boolean): RapAction {
  if (before === after) return 'cr4-other';
  if (bit === 'pae' || bit === 'pse' || bit === 'pge') return `cr4-${bit}`;
  if (bit === 'pke' && after) return 'cr4-pke-set';
  if (bit === 'pcide' && !after) return 'cr4-pcide-clear';
  return 'cr4-other';
}
