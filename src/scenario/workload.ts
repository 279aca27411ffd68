import { z } from 'zod';
import { durationOr } from './duration.js';
import { LIMITS } from './limits.js';
import { intIn, oneOf } from './numbers.js';
import { scriptSchema } from './scriptOps.js';
import { strictObject } from './strictObject.js';

/** Whether the OS stuffs the RAP on a context switch (docs/domain.md §4). */
export const STUFFING = ['auto', 'always', 'never'] as const;
/** The instruction a context switch uses. */
export const SWITCH_INSTRUCTIONS = ['mov-cr3', 'mov-cr3-noflush', 'invpcid-single'] as const;
/** The instruction a global TLB flush uses: INVPCID type 2/3 where available, else a CR4.PGE toggle. */
export const GLOBAL_FLUSHES = ['invpcid-all', 'cr4-pge'] as const;
/** The instruction a local (this-CPU, this-process) TLB flush uses. */
export const LOCAL_FLUSHES = ['cr3-reload', 'invpcid-single', 'invlpg'] as const;

/** A periodic event: `every` is the mean time between events, 0 = never. */
function every(text: string) {
  return durationOr(text).meta({ description: 'Mean time between events; 0 = never.' });
}

/**
 * The workload keys shared by a guest OS and the host's own processes: how often the OS does each
 * thing that matters for the RAP and the TLB, plus an optional script per CPU. Rates are times
 * between events (interface.md).
 *
 * @param unit what the script's keys index: a guest's vCPUs, or the host's cores
 */
function workloadFields(unit: 'vCPU' | 'core') {
  return {
    stuffing: oneOf(STUFFING).default('auto'),
    contextSwitch: strictObject({
      every: every('50us'),
      using: oneOf(SWITCH_INSTRUCTIONS).default('mov-cr3'),
    }).prefault({}),
    globalFlush: strictObject({
      every: every('0'),
      using: oneOf(GLOBAL_FLUSHES).default('invpcid-all'),
    }).prefault({}),
    shootdown: strictObject({ every: every('0'), pages: intIn(1, LIMITS.pages).default(1) }).prefault({}),
    localFlush: strictObject({
      every: every('0'),
      using: oneOf(LOCAL_FLUSHES).default('cr3-reload'),
    }).prefault({}),
    /** MOV CR3 that reaches KVM's instruction emulator (e.g. via MMIO), with NPT on or off. */
    emulatedMovCr3: strictObject({ every: every('0') }).prefault({}),
    hlt: strictObject({ every: every('0'), for: durationOr('10us') }).prefault({}),
    callDepth: intIn(1, LIMITS.callDepth).default(8),
    workingSetPages: intIn(1, LIMITS.pages).default(16),
    script: scriptSchema(unit).prefault({}),
  };
}

/**
 * What a guest OS runs: its processes and how often it switches, flushes, shoots down and halts.
 *
 * @example
 * GuestWorkloadSchema.parse({}).contextSwitch // { every: 50_000_000, using: 'mov-cr3' }
 */
export const GuestWorkloadSchema = strictObject({
  processes: intIn(1, LIMITS.processes).default(2),
  ...workloadFields('vCPU'),
}).meta({
  id: 'GuestWorkload',
  description: "A guest OS's processes and how often it switches, flushes and halts.",
});
export type GuestWorkload = z.output<typeof GuestWorkloadSchema>;

/**
 * The host's own tasks, competing with vCPU threads for cores: the whole workload of a bare-metal
 * scenario. `count` plays the role of a guest's `processes` (0 is allowed: a host that only runs
 * VMs), and scripts are keyed by core.
 *
 * @example
 * HostProcessesSchema.parse({ count: 2 }).count // 2
 */
export const HostProcessesSchema = strictObject({
  count: intIn(0, LIMITS.processes).default(0),
  /**
   * How many cores each process has threads on, cycled over the processes (`[2, 4]`: process 0
   * on 2 cores, process 1 on 4, process 2 on 2, ...); empty: every process on every core. This is
   * what makes a shootdown's IPI fan-out differ between processes.
   */
  threadsPerProcess: z
    .array(intIn(1, LIMITS.cores), { error: 'a list of thread counts' })
    .max(LIMITS.processes, { error: `at most ${LIMITS.processes} entries` })
    .default([]),
  ...workloadFields('core'),
});
export type HostProcesses = z.output<typeof HostProcessesSchema>;
