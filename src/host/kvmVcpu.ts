import type { Port } from '../actors/hostedActor.js';
import type { Time } from '../actors/time.js';
import { encodeContext, hostKernelContext, KERNEL_PROCESS } from '../hw/context.js';
import type { CoreHw } from '../hw/core.js';
import type { GuestExit } from '../hw/exit.js';
import { type ActionHandling, type ActionObs, ObsKind, type VmrunObs } from '../hw/observations.js';
import type { Intercepts, TlbControl, Vmcb } from '../hw/vmcb.js';
import { EXIT_HANDLERS, type ExitOutcome } from './exitHandlers.js';
import { pushHostChain, returnHostChain } from './hostChain.js';
import type { Hypervisor, KvmRequest } from './hypervisor.js';
import type { ErapsPolicy } from './policies/index.js';

export type { KvmRequest } from './hypervisor.js';

/** KVM's own TLB_CONTROL names (arch/x86/include/asm/svm.h). */
const TLB_CONTROL_DO_NOTHING = 0 as TlbControl;
const TLB_CONTROL_FLUSH_ASID = 3 as TlbControl;

/** Return addresses of KVM's own call chain (vcpu_enter_guest → svm_vcpu_run → __svm_vcpu_run). */
const KVM_CHAIN = 0x7f000000;

/** What the guest's CPUID says after KVM_SET_CPUID2, limited by what the policy advertises. */
export interface EffectiveCpuid {
  eraps: boolean;
  /** RAP entries the guest believes it has: RapSize×8 with ERAPS, else 32. */
  rapEntries: number;
  pcid: boolean;
  invpcid: boolean;
}

export interface KvmVcpuParams {
  port: Port;
  core: CoreHw;
  policy: ErapsPolicy;
  npt: boolean;
  autoIbrs: boolean;
  hostHasEraps: boolean;
  cpuid: EffectiveCpuid;
  /** Index of the VM (contexts, reports) and of the vCPU within it. */
  vm: number;
  vcpu: number;
  /** Nesting level of the guest this vCPU runs (1 for an ordinary VM). */
  level: number;
  /** Actor index of the vCPU actor (where VMRUN is delivered). */
  vcpuActor: number;
  /**
   * This vCPU is an L1 guest hypervisor running L2 vCPUs on it (nested SVM): one per L2 VM of
   * that L1 (vCPU i of each L2 runs on L1 vCPU i).
   */
  nested?: NestedTarget[];
}

/** An L2 vCPU that an L1 vCPU runs. */
export interface NestedTarget {
  l2Actor: number;
  l2Vm: number;
  l2Vcpu: number;
}

/** Where the next VMRUN goes and what it carries. */
export interface Entry {
  cost: Time;
  target: number;
  /** For L1: an L2 exit that L0 reflected (nested #VMEXIT), for L1's KVM to handle. */
  reflected?: GuestExit;
  /**
   * The VMCB's pause filter count as guest time: how long the guest may spin (execute PAUSEs
   * back to back) before the PAUSE intercept fires; 0 when PAUSE is not intercepted.
   */
  pleAfter: Time;
}

/** KVM statistics for the report. */
export interface KvmStats {
  exits: Record<string, number>;
  worldSwitches: number;
  clearRapVmruns: number;
  timeInExitsPs: number;
}

/**
 * The host side of one vCPU: KVM's run loop state for it (vmcb01, request bits, the pending RAP
 * clear, the guest's control registers as KVM tracks them) and the paths of docs/domain.md §3 in
 * KVM's order: `enter` services requests and executes VMRUN (vcpu_enter_guest → svm_vcpu_run),
 * `handleExit` takes the #VMEXIT and dispatches it through the exhaustive exit table. The
 * policy is consulted exactly where the ERAPS patches hook into KVM.
 */
export class KvmVcpu implements Hypervisor {
  readonly vmcb01: Vmcb;
  readonly requests = new Set<KvmRequest>();
  /** linux-7.0: an alias of the CR3-dirty bit; other policies record nothing here. */
  pendingRapClear = false;
  /** Why the pending clear was recorded (for reports). */
  pendingWhy = '';
  /** The guest's CR3 (as a PCID) and control registers, as KVM's VMCB save area holds them. */
  /**
   * The guest's CR3 as KVM knows it (vcpu->arch.cr3): the guest OS starts in process 0 (PCID 1);
   * with NPT on KVM copies it from the VMCB save area on every exit (the guest's MOV CR3 runs
   * natively), with NPT off it sees every write.
   */
  guestCr3 = 1;
  readonly guestCr4 = { pge: true, pse: true, pae: true, pcide: true, pke: false, smep: true };
  readonly guestCr0 = { pg: true, wp: true };
  readonly stats: KvmStats = { exits: {}, worldSwitches: 0, clearRapVmruns: 0, timeInExitsPs: 0 };
  /** The guest kernel's context (this VM and vCPU), for reports. */
  readonly guestKernelCtx: number;
  private hostCtx: number;
  /** The pCPU this vCPU runs on (vcpu->cpu); it changes when the host scheduler migrates it. */
  private core_: CoreHw;
  /** Nested SVM: vmcb02 (L2 as L0 runs it), which level runs, and the reflected exit for L1. */
  readonly vmcb02: Vmcb | undefined;
  running: 'l1' | 'l2' = 'l1';
  /**
   * An interrupt for L1 arrived while L2 was L1's guest: L1 intercepts INTR (KVM as L1 always
   * does), so the next entry is a nested #VMEXIT to L1 instead of a return to L2.
   */
  private l1InterruptPending = false;
  private reflected: GuestExit | undefined;
  private nestedExitClear = { value: false, step: '' };
  private vmcb02Why = '';
  /** Nested VMRUNs emulated so far: names the L2 entry an L1 timer was armed for. */
  nestedEntries = 0;
  /** The L2 that L1's last VMRUN entered (KVM has one vmcb02 per vCPU, refilled from each vmcb12). */
  private l2: NestedTarget | undefined;
  /** control->pause_filter_count: this vCPU's PLE window (pauses), grown by PAUSE exits. */
  pauseFilterCount: number;
  /** vcpu->scheduled_out: the next vcpu_load shrinks the PLE window (svm_vcpu_load). */
  scheduledOut = false;
  /** The guest's CPL at the last exit was 0 (kvm_arch_vcpu_in_kernel, read at vcpu_put). */
  inKernelAtExit = true;

  constructor(readonly p: KvmVcpuParams) {
    const allow = p.policy.allowLargerRap({ hostHasEraps: p.hostHasEraps, guestHasEraps: p.cpuid.eraps });
    this.vmcb01 = {
      name: 'vmcb01',
      // svm->asid: each vCPU has its own on a pCPU (pre_svm_run), so two vCPUs sharing a core
      // never share translations.
      asid: 1 + p.vm * 1024 + p.vcpu,
      tlbControl: TLB_CONTROL_DO_NOTHING,
      erapCtl: { allowLargerRap: allow.value && p.hostHasEraps, clearRap: false },
      intercepts: KvmVcpu.intercepts(p.npt, p.cpuid),
      npt: p.npt,
    };
    this.guestKernelCtx = encodeContext({
      world: 'guest',
      level: p.level,
      vm: p.vm,
      view: p.vcpu,
      process: KERNEL_PROCESS,
    });
    this.core_ = p.core;
    this.pauseFilterCount = p.core.timing.pleWindow;
    this.hostCtx = hostKernelContext(p.core.params.index);
    this.vmcb02 = p.nested?.length
      ? {
          name: 'vmcb02',
          asid: 0,
          tlbControl: TLB_CONTROL_DO_NOTHING,
          erapCtl: { allowLargerRap: false, clearRap: false },
          intercepts: this.vmcb01.intercepts,
          npt: p.npt,
        }
      : undefined;
  }

  /**
   * grow_ple_window (svm.c): a PAUSE exit doubles the window (pause_filter_count_grow = 2 is
   * below the base, so __grow_ple_window multiplies) up to pause_filter_count_max. A window of
   * 0 means PAUSE is not intercepted (kvm_pause_in_guest) and nothing changes.
   */
  growPleWindow(): void {
    const t = this.core_.timing;
    if (t.pleWindow === 0) return;
    const grow = t.pleWindowGrow;
    const grown =
      grow < 1
        ? t.pleWindow
        : grow < t.pleWindow
          ? this.pauseFilterCount * grow
          : this.pauseFilterCount + grow;
    this.pauseFilterCount = Math.min(grown, t.pleWindowMax);
  }

  /**
   * SVM's intercepts as KVM sets them (docs/domain.md §3): MOV CR3 and INVLPG only with shadow
   * paging (NPT off); CR4 writes always (non-SEV-ES); INVPCID when NPT is off or the guest's
   * CPUID lacks INVPCID; CR0 writes (modelled as always intercepted); HLT; VMRUN; WRMSR to
   * every MSR not passed through.
   */
  static intercepts(npt: boolean, cpuid: EffectiveCpuid): Intercepts {
    return {
      cr3Write: !npt,
      cr4Write: true,
      cr0Write: true,
      invpcid: !npt || !cpuid.invpcid,
      invlpg: !npt,
      wrmsr: true,
      hlt: true,
      vmrun: true,
    };
  }

  get core(): CoreHw {
    return this.core_;
  }

  /**
   * The host scheduler moved this vCPU's thread to another pCPU. svm_vcpu_load on a new CPU makes
   * pre_svm_run assign a fresh ASID there (new_asid; "KVM's asid assignments are per logical
   * CPU"), so nothing this vCPU left in that pCPU's TLB on an earlier visit is reachable again:
   * rapsim keeps the vCPU's ASID and drops its entries on the new pCPU instead, the same
   * effect. No TLB_CONTROL flush and no RAP clear come with it.
   */
  migrate(to: CoreHw): void {
    this.core_ = to;
    this.hostCtx = hostKernelContext(to.params.index);
    to.tlb.flushAsid(this.vmcb01.asid);
  }

  /**
   * vcpu_enter_guest: service the TLB requests (kvm_service_local_tlb_flush_requests), let the
   * policy decide CLEAR_RAP, then VMRUN with KVM's call chain outstanding on the host RAP.
   * After VMRUN KVM resets CLEAR_RAP and TLB_CONTROL. Returns the VMRUN's cost.
   */
  enter(): Entry {
    const { policy } = this.p;
    const core = this.core_;
    // svm_vcpu_load after the vCPU was scheduled out: shrink_ple_window, which with
    // pause_filter_count_shrink = 0 resets the window to its base.
    if (this.scheduledOut) {
      this.scheduledOut = false;
      this.pauseFilterCount = core.timing.pleWindow;
    }
    // vcpu_enter_guest → kvm_check_nested_events → svm_check_nested_events: an interrupt for L1
    // while L2 is its guest becomes a nested #VMEXIT with EXIT_INTR (nested_svm_simple_vmexit).
    let nestedExitCost = 0;
    if (this.running === 'l2' && this.l1InterruptPending) {
      const n = this.l2!;
      this.stats.exits['l2:intr'] = (this.stats.exits['l2:intr'] ?? 0) + 1;
      nestedExitCost = this.reflectToL1({
        reason: 'intr',
        ctx: this.l2KernelCtx(n),
        detail: 'nested #VMEXIT (EXIT_INTR): an interrupt for L1 arrived while its L2 ran',
      }).cost;
      this.stats.timeInExitsPs += nestedExitCost;
    }
    this.l1InterruptPending = false;
    const l2 = this.running === 'l2';
    const v = l2 ? this.vmcb02! : this.vmcb01;
    // Both requests are consumed here (no short-circuit: a leftover would flush on a later VMRUN).
    const flushAll = this.requests.delete('TLB_FLUSH');
    const flushCurrent = this.requests.delete('TLB_FLUSH_CURRENT');
    if (flushAll || flushCurrent) {
      v.tlbControl = TLB_CONTROL_FLUSH_ASID;
    }
    if (this.requests.delete('TLB_FLUSH_GUEST')) {
      // svm_flush_tlb_guest: the policy may record a pending RAP clear, then the ASID is flushed.
      const d = policy.pendingClear('flush-tlb-guest');
      if (d.value) this.markPending(d.step);
      v.tlbControl = TLB_CONTROL_FLUSH_ASID;
    }
    // L2's CLEAR_RAP was decided when L0 emulated L1's VMRUN; L1's may come from a nested #VMEXIT.
    const clear = l2
      ? { value: v.erapCtl.clearRap, step: this.vmcb02Why }
      : this.nestedExitClear.value
        ? this.nestedExitClear
        : policy.clearRapAtVmrun({ pending: this.pendingRapClear, guestHasEraps: this.p.cpuid.eraps });
    this.nestedExitClear = { value: false, step: '' };
    v.erapCtl.clearRap = clear.value;
    // KVM's own call chain is on the host RAP while the guest runs; it returns after #VMEXIT.
    pushHostChain(core, this.hostCtx, KVM_CHAIN, core.timing.kvmCallDepth, this.p.port.now());
    // VMRUN loads the guest's CR3 from the save area: with NPT the CPU runs on it directly, and
    // another vCPU may have run on this pCPU since this one last exited.
    if (!l2 && this.p.npt) core.pcid = this.guestCr3;
    const r = core.vmrun(v);
    this.stats.worldSwitches++;
    if (v.erapCtl.clearRap) this.stats.clearRapVmruns++;
    const obs: VmrunObs = {
      pcpu: core.params.index,
      ctx: l2 ? this.l2KernelCtx(this.l2!) : this.guestKernelCtx,
      vmcb: v.name,
      clearRap: v.erapCtl.clearRap,
      cleared: r.effect?.cleared ?? false,
      allowLargerRap: v.erapCtl.allowLargerRap,
      tlbControl: v.tlbControl,
      why: clear.step,
    };
    this.p.port.observe(ObsKind.VMRUN, obs);
    // After VMRUN: KVM resets CLEAR_RAP (whether the CPU does is undocumented) and the dirty bits.
    v.erapCtl.clearRap = false;
    v.tlbControl = TLB_CONTROL_DO_NOTHING;
    this.pendingRapClear = false;
    this.pendingWhy = '';
    const reflected = this.reflected;
    this.reflected = undefined;
    const target = l2 ? this.l2!.l2Actor : this.p.vcpuActor;
    const cost = r.cost + nestedExitCost;
    // PAUSE-loop exiting inside an L2 is not modelled (README): an L2 spinning on its shootdown's
    // acknowledgements never exits. KVM would give vmcb02 vmcb01's count when L0 intercepts PAUSE
    // (nested_vmcb02_prepare_control) and reflect the exit to L1 when vmcb12 intercepts it too.
    const pleAfter = l2 ? 0 : this.pauseFilterCount * core.timing.pauseLoop;
    return reflected ? { cost, target, reflected, pleAfter } : { cost, target, pleAfter };
  }

  /**
   * nested_svm_vmrun: L1 executed VMRUN of vmcb12; L0 builds vmcb02's erap_ctl as its policy
   * says (linux-7.0 step 8: vmcb12's ALLOW_LARGER_RAP | CLEAR_RAP) and runs L2 next.
   */
  private nestedVmrun(exit: GuestExit): ExitOutcome {
    const v02 = this.vmcb02!;
    const target = this.p.nested!.find((n) => n.l2Vm === exit.arg);
    if (!target) throw new Error(`L1 executed VMRUN of VM ${exit.arg}, which this vCPU does not run`);
    this.l2 = target;
    // KVM runs vmcb02 on the vCPU's own ASID (svm->asid, as vmcb01) and flushes it on every
    // nested transition: nested_svm_transition_tlb_flush → KVM_REQ_TLB_FLUSH_CURRENT ("KVM uses
    // a single ASID for L1 and L2", svm_flush_tlb). So neither level nor two L2s share a
    // translation across a transition.
    v02.asid = this.vmcb01.asid;
    this.request('TLB_FLUSH_CURRENT');
    const bits = exit.vmcb12 ?? { allowLargerRap: false, clearRap: false };
    const d = this.p.policy.nestedVmrun({
      vmcb12AllowLargerRap: bits.allowLargerRap,
      vmcb12ClearRap: bits.clearRap,
      hostHasEraps: this.p.hostHasEraps,
    });
    v02.erapCtl.allowLargerRap = d.allowLargerRap.value && this.p.hostHasEraps;
    v02.erapCtl.clearRap = d.clearRap.value;
    this.vmcb02Why = d.clearRap.step;
    this.running = 'l2';
    this.nestedEntries++;
    const cost = this.core_.timing.exitHandler;
    return exit.l1TimerAt === undefined ? { cost } : { cost, l1Timer: exit.l1TimerAt };
  }

  /**
   * An L2 exit: L0 reflects it to L1 (nested_svm_vmexit). L0's policy decides whether vmcb01
   * gets CLEAR_RAP for the VMRUN that resumes L1 (linux-7.0 step 8).
   */
  private reflectToL1(exit: GuestExit): ExitOutcome {
    this.nestedExitClear = this.p.policy.nestedVmexit();
    // nested_svm_vmexit → nested_svm_transition_tlb_flush: the shared ASID is flushed for L1.
    this.request('TLB_FLUSH_CURRENT');
    this.running = 'l1';
    this.reflected = exit;
    return { cost: this.core_.timing.nestedExitReflect };
  }

  /** #VMEXIT: back to host mode, return up KVM's call chain, dispatch the exit. */
  handleExit(exit: GuestExit, from?: number): ExitOutcome & { switchCost: Time } {
    const core = this.core_;
    const { cost: switchCost } = core.vmexit(this.p.autoIbrs);
    if (this.p.npt) this.guestCr3 = core.pcid;
    // The exit may carry an action the guest believes cleared the RAP (an intercepted MOV CR3,
    // a CR4.PGE toggle): start a new candidate epoch so later RETs over older entries are
    // reported to the checkers, who judge them.
    core.candidateEpoch++;
    this.stats.worldSwitches++;
    // KVM's RETs after #VMEXIT: on legacy hardware they may consume guest-pushed entries.
    returnHostChain(core, this.hostCtx, KVM_CHAIN, core.timing.kvmCallDepth, this.p.port);
    // An L2 exit is reflected to L1, except a physical interrupt, which is L0's own business.
    const fromL2 = this.l2 !== undefined && from === this.l2.l2Actor && exit.reason !== 'intr';
    const label = fromL2 ? `l2:${exit.reason}` : exit.reason;
    this.stats.exits[label] = (this.stats.exits[label] ?? 0) + 1;
    if (!fromL2) this.inKernelAtExit = exit.cpl !== 3;
    if (exit.reason === 'pause' && !fromL2) this.growPleWindow();
    const outcome = fromL2
      ? this.reflectToL1(exit)
      : exit.reason === 'vmrun' && this.p.nested
        ? this.nestedVmrun(exit)
        : EXIT_HANDLERS[exit.reason](this, exit);
    this.stats.timeInExitsPs += switchCost + outcome.cost + Math.round(core.timing.vmrunVmexitRoundTrip / 2);
    return { ...outcome, switchCost };
  }

  /**
   * INIT for this vCPU (kvm_apic_accept_events → kvm_vcpu_reset with init_event): the reset marks
   * CR3 dirty — `linux-7.0` step 2: a pending RAP clear — and raises a guest TLB flush
   * (docs/domain.md §3). The guest believes in the clear INIT promises (APM §5.5.3).
   */
  initReset(): void {
    const d = this.p.policy.pendingClear('cr3-dirty');
    if (d.value) this.markPending(d.step);
    this.request('TLB_FLUSH_GUEST');
    const exit: GuestExit = {
      reason: 'intr',
      ctx: this.guestKernelCtx,
      detail: 'INIT IPI (an x2APIC ICR write by another vCPU)',
    };
    const path = `kvm_vcpu_reset (init_event): CR3 marked dirty, KVM_REQ_TLB_FLUSH_GUEST raised; ${
      d.value ? d.step : `policy ${this.p.policy.name} leaves no RAP clear pending`
    }`;
    this.reportGuestAction(exit, 'init', 'intercepted', path);
  }

  /** An interrupt for this (L1) vCPU is pending; with L2 running, it ends L2's turn at entry. */
  noteL1Interrupt(): void {
    if (this.running === 'l2') this.l1InterruptPending = true;
  }

  /** The actor in guest mode right now: the L2 that L1 entered, or this vCPU. */
  get guestActor(): number {
    return this.running === 'l2' ? this.l2!.l2Actor : this.p.vcpuActor;
  }

  private l2KernelCtx(n: NestedTarget): number {
    return encodeContext({
      world: 'guest',
      level: this.p.level + 1,
      vm: n.l2Vm,
      view: n.l2Vcpu,
      process: KERNEL_PROCESS,
    });
  }

  /** Raise a request (kvm_make_request). */
  request(r: KvmRequest): void {
    this.requests.add(r);
  }

  /** Record the pending RAP clear (linux-7.0's VCPU_EXREG_ERAPS). */
  markPending(why: string): void {
    this.pendingRapClear = true;
    this.pendingWhy = why;
  }

  /** Report how KVM handled a guest action, on behalf of the guest context that executed it. */
  reportGuestAction(
    exit: GuestExit,
    action: ActionObs['action'],
    handling: ActionHandling,
    path: string,
  ): void {
    const obs: ActionObs = {
      pcpu: this.core_.params.index,
      ctx: exit.ctx,
      action,
      handling,
      cleared: false,
      microarch: false,
      detail: `${exit.detail}; ${path}`,
    };
    this.p.port.observe(ObsKind.ACTION, obs);
  }
}
