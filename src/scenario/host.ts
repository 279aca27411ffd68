import { z } from 'zod';
import { DurationSchema, durationOr, PositiveDurationSchema } from './duration.js';
import { LatencySchema } from './latency.js';
import { LIMITS } from './limits.js';
import { bool, intIn, oneOf } from './numbers.js';

/** A thread's nice value, −20 … 19 (sched_prio_to_weight: 1024 at 0, each step ≈ 10% of CPU). */
export const NiceSchema = intIn(-20, 19, 'a nice value, a whole number from -20 to 19');

import { strictObject } from './strictObject.js';

/**
 * Hypervisor policies rapsim compares (docs/domain.md §3, "The policies rapsim compares"), and
 * the mutants that exist to prove a checker can fire (src/host/policies/mutant*.ts).
 */
export const POLICIES = ['hide', 'naive', 'v6', 'linux-7.0', 'always', 'mutant-forget-pv-flush'] as const;
export type Policy = (typeof POLICIES)[number];

/** The host scheduler's migration domains: a last-level cache, a socket, or no migration. */
export const MIGRATION_DOMAINS = ['llc', 'socket', 'off'] as const;
export type MigrationDomainKind = (typeof MIGRATION_DOMAINS)[number];

/** A hypervisor RAP policy, by its scenario name. */
export const PolicySchema = oneOf(POLICIES);

/**
 * A host kernel thread that shares pCPUs with vCPU threads (a vhost worker, a kworker): one per
 * listed core, bound to it. It wakes every `every`, needs `run` of CPU time, and sleeps again.
 *
 * @example
 * HostTaskSchema.parse({ name: 'vhost', every: '1ms', run: '100us' }).callDepth // 8
 */
export const HostTaskSchema = strictObject({
  name: z.string().min(1, { error: 'a non-empty name' }),
  /** Cores with a thread of it; absent: every core that runs vCPUs. */
  cores: z.array(intIn(0, LIMITS.cores - 1, 'a core index (0, 1, …)')).optional(),
  every: PositiveDurationSchema,
  run: PositiveDurationSchema,
  /** Depth of its call chain into schedule(): what it returns through when it runs again. */
  callDepth: intIn(1, LIMITS.callDepth).default(8),
  /** Its nice value: its EEVDF weight against the vCPU threads (a kworker/…H runs at −20). */
  nice: NiceSchema.default(0),
}).refine((t) => t.run < t.every, { error: 'run shorter than every', path: ['run'] });
export type HostTask = z.output<typeof HostTaskSchema>;

/**
 * The host hypervisor: paging mode, interrupt virtualization, RAP policy and scheduler.
 *
 * @example
 * HostSchema.parse({}).scheduler // { migration: 'llc', migrationCost: 500_000_000 } (slice, haltPoll: the timing table's)
 */
export const HostSchema = strictObject({
  /** Nested paging; off means shadow paging, where KVM intercepts the guest's MOV CR3. */
  npt: bool().default(true),
  avic: bool().default(false),
  policy: PolicySchema.default('linux-7.0'),
  /** `switch_vcpu_ibpb`: IBPB in `kvm_arch_vcpu_load` when another vCPU last ran on this pCPU. */
  ibpbOnVcpuSwitch: bool().default(true),
  scheduler: strictObject({
    /**
     * The host scheduler's slice and KVM's halt-polling window. Absent: the timing table's
     * `schedSlice` and `haltPoll` (docs/timing.md: 2.8 ms, 200 µs), which `host.latency` may also
     * override — the same two numbers, so a scenario sets each in one place only (checkTopology).
     */
    slice: DurationSchema.optional().meta({
      description:
        "Default: the timing table's schedSlice (2.8 ms); host.latency.schedSlice is the same number.",
    }),
    /**
     * The scheduler tick's period (1/HZ: 1ms at HZ=1000, 4ms at HZ=250), where a running
     * thread's expired request is noticed and it is preempted for a waiting one. 0: at the
     * request's end exactly, as with the HRTICK sched feature (Linux's default is off: the tick).
     */
    tick: durationOr('0').meta({
      description:
        '0 (default): a slice ends exactly when the request does (HRTICK); else the tick period (1/HZ) at which it is noticed, e.g. 1ms or 4ms.',
    }),
    haltPoll: DurationSchema.optional().meta({
      description: "Default: the timing table's haltPoll (200 us); host.latency.haltPoll is the same number.",
    }),
    /**
     * Where unpinned vCPU threads may migrate: within a last-level cache (`hardware.coresPerLlc`),
     * within a socket, or nowhere. A pinned vCPU never migrates.
     */
    migration: oneOf(MIGRATION_DOMAINS).default('llc'),
    /** sysctl_sched_migration_cost: a thread that ran this recently is cache-hot and stays. */
    migrationCost: durationOr('500us'),
    /**
     * yield_task_fair as of Linux 6.17 (79104becf42b): an eligible yielder forfeits the rest of
     * its request (vruntime to its deadline). false: the older rule, where only its deadline
     * moves a slice later and it keeps its lag.
     */
    yieldForfeit: bool().default(true),
    /**
     * PICK_BUDDY (a sched feature since Linux 6.12, on by default): schedule() picks the run
     * queue's next buddy — a directed yield's target — while it is eligible. false (6.6–6.11):
     * the buddy is ignored; yield_to's reschedule still lets pick_eevdf switch away from a
     * current thread that is no longer eligible.
     */
    pickBuddy: bool().default(true),
    /**
     * DELAY_DEQUEUE (a sched feature since Linux 6.12, on by default, with DELAY_ZERO): a thread
     * that sleeps while not eligible stays on its run queue until it would be picked, and comes
     * back with no more than zero lag. false: it leaves at once and keeps its negative lag.
     */
    delayDequeue: bool().default(true),
  }).prefault({}),
  latency: LatencySchema.prefault({}),
  /** Host kernel threads beside the vCPU threads on their pCPUs. */
  tasks: z.array(HostTaskSchema).default([]),
});
export type Host = z.output<typeof HostSchema>;
