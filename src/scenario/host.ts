import type { z } from 'zod';
import { durationOr } from './duration.js';
import { LatencySchema } from './latency.js';
import { bool, oneOf } from './numbers.js';
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
 * The host hypervisor: paging mode, interrupt virtualization, RAP policy and scheduler.
 *
 * @example
 * HostSchema.parse({}).scheduler // { slice: 2_800_000_000, haltPoll: 200_000_000, migration: 'llc', migrationCost: 500_000_000 }
 */
export const HostSchema = strictObject({
  /** Nested paging; off means shadow paging, where KVM intercepts the guest's MOV CR3. */
  npt: bool().default(true),
  avic: bool().default(false),
  policy: PolicySchema.default('linux-7.0'),
  /** `switch_vcpu_ibpb`: IBPB in `kvm_arch_vcpu_load` when another vCPU last ran on this pCPU. */
  ibpbOnVcpuSwitch: bool().default(true),
  scheduler: strictObject({
    slice: durationOr('2.8ms'),
    haltPoll: durationOr('200us'),
    /**
     * Where unpinned vCPU threads may migrate: within a last-level cache (`hardware.coresPerLlc`),
     * within a socket, or nowhere. A pinned vCPU never migrates.
     */
    migration: oneOf(MIGRATION_DOMAINS).default('llc'),
    /** sysctl_sched_migration_cost: a thread that ran this recently is cache-hot and stays. */
    migrationCost: durationOr('500us'),
  }).prefault({}),
  latency: LatencySchema.prefault({}),
});
export type Host = z.output<typeof HostSchema>;
