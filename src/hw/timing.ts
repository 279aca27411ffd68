import { cyclesToPs, MS, NS, parseDuration, type Time, US } from '../actors/time.js';

/** Where a figure comes from (docs/timing.md): stated, seen through secondary quotes, estimated. */
export type SourceTag = 'S' | 'S2' | 'E';

export interface TimingEntry {
  /** The value in `unit`. */
  value: number;
  unit: 'cycles' | 'ns' | 'us' | 'ms' | 'count';
  tag: SourceTag;
  source: string;
  what: string;
  /**
   * Set on an entry no model reads: why it is in the table (a figure the model is compared with,
   * or one for a path not modelled). A scenario may not override it — that would change nothing.
   */
  reference?: string;
}

/**
 * Every cost in the simulation, with its source (docs/timing.md). Models read costs only from
 * a resolved {@link Timing}; no constant is buried in a handler. Entries tagged E are estimates
 * to be replaced when a better source appears. Scenario keys `hardware.latency` / `host.latency`
 * override entries by name (durations, or integers in the entry's unit for cycle/count entries).
 */
export const TIMING_TABLE = {
  vmrunVmexitRoundTrip: {
    value: 1350,
    unit: 'cycles',
    tag: 'S',
    source: 'LKML 20201216151203.utpaitooaer7mdfa@amd.com',
    what: 'VMRUN → #VMEXIT round trip, trivial guest (AMD EPYC)',
  },
  kvmRunEntry: {
    value: 570,
    unit: 'cycles',
    tag: 'S',
    source: 'LKML 20201216151203.utpaitooaer7mdfa@amd.com',
    what: 'KVM_RUN ioctl entry → VMRUN',
    reference: 'rapsim models no exits to user space, so KVM_RUN never returns',
  },
  kvmRunExit: {
    value: 600,
    unit: 'cycles',
    tag: 'S',
    source: 'LKML 20201216151203.utpaitooaer7mdfa@amd.com',
    what: 'exit → KVM_RUN ioctl return',
    reference: 'rapsim models no exits to user space, so KVM_RUN never returns',
  },
  exitHandler: {
    value: 300,
    unit: 'cycles',
    tag: 'E',
    source: '—',
    what: 'in-kernel exit handler (CR/INVPCID/MSR) beyond the switch',
  },
  emulator: {
    value: 2000,
    unit: 'cycles',
    tag: 'E',
    source: '—',
    what: 'instruction emulator round trip (decode + emulate)',
  },
  nestedExitReflect: {
    value: 13000,
    unit: 'cycles',
    tag: 'S',
    source: '"VMX optimizations" series 00/43 (Intel; used for AMD until a better figure)',
    what: 'nested (L2) exit reflected to L1, round trip',
  },
  ipiSameSocket: { value: 1000, unit: 'ns', tag: 'E', source: '—', what: 'native IPI delivery, same socket' },
  ipiCrossSocket: {
    value: 2700,
    unit: 'ns',
    tag: 'S2',
    source: 'LATR (ASPLOS’18): 2.7 µs at 16 cores, 2 sockets',
    what: 'native IPI delivery, cross socket',
  },
  guestIpiExit: {
    value: 1860,
    unit: 'ns',
    tag: 'S',
    source: 'LKML 20211108095931.618865-1-huangkele@bytedance.com',
    what: 'guest IPI, exit-based (PV send-IPI)',
    reference:
      'the exit-based guest IPI is composed from the exit, handler, link, kick and VMRUN costs; the README compares that sum with this figure',
  },
  guestIpiAvic: {
    value: 1390,
    unit: 'ns',
    tag: 'S',
    source: 'LKML 20211108095931.618865-1-huangkele@bytedance.com',
    what: 'guest IPI with AVIC',
  },
  invlpg: {
    value: 260,
    unit: 'cycles',
    tag: 'S',
    source: 'LKML 20150608195237.GA15429@gmail.com',
    what: 'INVLPG',
  },
  cr3Reload: {
    value: 96,
    unit: 'cycles',
    tag: 'S',
    source: 'LKML 20150608195237.GA15429@gmail.com',
    what: 'CR3-reload flush (MOV CR3)',
  },
  rangeFlush: {
    value: 404,
    unit: 'cycles',
    tag: 'S',
    source: 'LKML 20150608195237.GA15429@gmail.com',
    what: 'range flush',
    reference: 'no path flushes a range: shootdown targets flush page by page (INVLPG)',
  },
  invpcidAll: {
    value: 376,
    unit: 'ns',
    tag: 'S',
    source: 'Linux commit d8bced79af1d (Skylake)',
    what: 'INVPCID all-context',
  },
  cr4PgeToggle: {
    value: 539,
    unit: 'ns',
    tag: 'S',
    source: 'Linux commit d8bced79af1d (Skylake)',
    what: 'CR4.PGE toggle',
  },
  retMispredict: {
    value: 18,
    unit: 'cycles',
    tag: 'E',
    source: 'Agner Fog’s tables give 12–17 on older cores',
    what: 'return misprediction penalty',
  },
  rapStuff: {
    value: 80,
    unit: 'cycles',
    tag: 'E',
    source: 'sequence from Linux nospec-branch.h',
    what: 'RAP stuffing sequence (32 CALLs + LFENCE)',
  },
  ibpb: { value: 3000, unit: 'cycles', tag: 'E', source: '—', what: 'IBPB' },
  schedSlice: {
    value: 2.8,
    unit: 'ms',
    tag: 'S',
    source: 'Linux kernel/sched/fair.c, commit 2ae891b',
    what: 'host scheduler slice (EEVDF, ≥8 CPUs)',
  },
  haltPoll: { value: 200, unit: 'us', tag: 'S', source: 'Linux halt_poll_ns', what: 'halt polling' },
  pleWindow: {
    value: 3000,
    unit: 'count',
    tag: 'S',
    source: 'Linux arch/x86/kvm/x86.h',
    what: 'PLE window (SVM pause filter), pauses; 0 = PAUSE not intercepted',
  },
  pleWindowGrow: {
    value: 2,
    unit: 'count',
    tag: 'S',
    source: 'Linux arch/x86/kvm/svm/svm.c (pause_filter_count_grow, __grow_ple_window)',
    what: 'factor by which a PAUSE exit grows the vCPU’s window',
  },
  pleWindowMax: {
    value: 65535,
    unit: 'count',
    tag: 'S',
    source: 'Linux arch/x86/kvm/svm/svm.c (pause_filter_count_max = KVM_SVM_DEFAULT_PLE_WINDOW_MAX)',
    what: 'largest PLE window, pauses',
  },
  pauseLoop: {
    value: 64,
    unit: 'cycles',
    tag: 'E',
    source: '— (one PAUSE and one load of the CSD lock word; AMD does not document PAUSE’s latency)',
    what: 'one iteration of a guest spin-wait loop (csd_lock_wait)',
  },
  workloadOp: {
    value: 30,
    unit: 'cycles',
    tag: 'E',
    source: '— (one CALL or RET per ≈50 instructions at IPC ≈1.7)',
    what: 'spacing of the workload’s CALL/RET operations',
  },
  pageAccessEvery: {
    value: 16,
    unit: 'count',
    tag: 'E',
    source: '—',
    what: 'workload operations between two data-page accesses',
  },
  flushIpiHandler: {
    value: 1200,
    unit: 'cycles',
    tag: 'E',
    source: '— (interrupt entry/exit + flush_tlb_func)',
    what: 'TLB-flush IPI handler on the target, beyond the flush itself',
  },
  shootdownSetup: {
    value: 600,
    unit: 'cycles',
    tag: 'E',
    source: '— (flush_tlb_mm_range: cpumask walk, ICR writes)',
    what: 'initiator’s work before the IPIs leave',
  },
  ipiSendPerTarget: {
    value: 100,
    unit: 'cycles',
    tag: 'E',
    source: '— (one x2APIC ICR write per target in smp_call_function_many_cond)',
    what: 'initiator’s cost per shootdown target (IPIs leave one after another)',
  },
  kvmCallDepth: {
    value: 8,
    unit: 'count',
    tag: 'E',
    source: '— (kvm_arch_vcpu_ioctl_run → vcpu_run → vcpu_enter_guest → svm_vcpu_run → __svm_vcpu_run)',
    what: 'host CALLs outstanding in KVM when it executes VMRUN (returned after #VMEXIT)',
  },
  contextSwitch: {
    value: 1500,
    unit: 'ns',
    tag: 'E',
    source: '— (schedule() without the CR3 write)',
    what: 'OS context-switch path',
  },
  wrmsr: { value: 100, unit: 'cycles', tag: 'E', source: '—', what: 'WRMSR (non-serializing MSRs)' },
  crWrite: { value: 60, unit: 'cycles', tag: 'E', source: '—', what: 'MOV to CR0/CR4 without a flush' },
} as const satisfies Record<string, TimingEntry>;

export type TimingKey = keyof typeof TIMING_TABLE;

/** The resolved costs of one run: every entry in picoseconds (counts stay counts). */
export type Timing = Readonly<Record<TimingKey, Time>>;

/** A timing key the scenario names that the table does not have. */
export class TimingKeyError extends Error {
  constructor(readonly key: string) {
    super(`unknown latency key "${key}"; expected one of ${Object.keys(TIMING_TABLE).join(', ')}`);
  }
}

/**
 * Resolves the table at a clock, with scenario overrides (`hardware.latency` then
 * `host.latency`), each a duration in ps (the scenario loader has parsed the strings) or, for
 * `count` entries, a plain count.
 */
export function resolveTiming(clockHz: number, overrides: Readonly<Record<string, number>> = {}): Timing {
  const out = {} as Record<TimingKey, Time>;
  for (const [key, e] of Object.entries(TIMING_TABLE) as [TimingKey, TimingEntry][]) {
    out[key] = toPs(e, clockHz);
  }
  for (const [key, v] of Object.entries(overrides)) {
    if (!Object.hasOwn(TIMING_TABLE, key)) throw new TimingKeyError(key);
    out[key as TimingKey] = v;
  }
  return out;
}

function toPs(e: TimingEntry, clockHz: number): Time {
  switch (e.unit) {
    case 'cycles':
      return cyclesToPs(e.value, clockHz);
    case 'ns':
      return Math.round(e.value * NS);
    case 'us':
      return Math.round(e.value * US);
    case 'ms':
      return Math.round(e.value * MS);
    case 'count':
      return e.value;
  }
}

/** One row of the timing table in force: the entry, and the value a run uses (ps, or a count). */
export interface TimingRow {
  key: string;
  ps: number;
  value: number;
  unit: string;
  tag: string;
  source: string;
  what: string;
  /** Why no model reads this entry (a reference figure); absent for the model's inputs. */
  reference?: string;
}

/** The table as rows for `--latency` and the report: key, resolved ps, unit, tag, source. */
export function timingRows(t: Timing): TimingRow[] {
  return (Object.entries(TIMING_TABLE) as [TimingKey, TimingEntry][]).map(([key, e]) => ({
    key,
    ps: t[key],
    value: e.value,
    unit: e.unit,
    tag: e.tag,
    source: e.source,
    what: e.what,
    ...(e.reference ? { reference: e.reference } : {}),
  }));
}

export { parseDuration };
