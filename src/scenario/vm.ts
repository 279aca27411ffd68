import { z } from 'zod';
import { NiceSchema, PolicySchema } from './host.js';
import { LIMITS } from './limits.js';
import { bool, intIn } from './numbers.js';
import { strictObject } from './strictObject.js';
import { GuestWorkloadSchema } from './workload.js';

/**
 * What userspace asks KVM to advertise (`KVM_SET_CPUID2`); the policy may advertise less. The
 * guest OS decides from the *effective* CPUID whether to stuff (docs/domain.md §3).
 */
const CpuidSchema = strictObject({
  eraps: bool().default(true),
  pcid: bool().default(true),
  invpcid: bool().default(true),
  /** CPUID Fn8000_0021_EBX[23:16]; absent: derived from the hardware's RAP size by a later layer. */
  rapSize: intIn(0, LIMITS.rapSize).optional(),
});

const vmName = z
  .string({ error: 'a VM name' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { error: 'a VM name of letters, digits, _ . - (at most 64)' });

/** The shape of a VM; `nested` makes it an L1 hypervisor over VMs of the same shape. */
const VmFields = strictObject({
  name: vmName,
  vcpus: intIn(1, LIMITS.vcpus),
  /** vCPU i runs only on core pin[i] (for an L2: on L1 vCPU pin[i]); absent: the scheduler places them. */
  pin: z
    .array(intIn(0, LIMITS.cores - 1, 'a core index (0, 1, …)'), { error: 'a list of core indices' })
    .optional(),
  /**
   * The nice value of its vCPU threads in the host scheduler (their EEVDF weight). For an L2:
   * must stay 0 (L1's scheduler alternates between its L2s without weights).
   */
  nice: NiceSchema.default(0),
  cpuid: CpuidSchema.prefault({}),
  /** KVM_FEATURE_PV_TLB_FLUSH: shootdowns skip preempted vCPUs and flag them instead. */
  pvTlbFlush: bool().default(false),
  /**
   * Hyper-V enlightened TLB flush: shootdowns are one flush hypercall; the host flushes the
   * targets (per address with INVLPGA, or all as a guest flush) before they next enter.
   */
  hypervTlbFlush: bool().default(false),
  guest: GuestWorkloadSchema.prefault({}),
  get nested() {
    return NestedSchema.optional();
  },
}).meta({ id: 'Vm', description: 'A virtual machine; with nested, an L1 hypervisor over L2 VMs.' });

/**
 * The L1 hypervisor inside a VM: its own policy and its L2 VMs.
 *
 * @example
 * NestedSchema.parse({ vms: [{ name: 'l2', vcpus: 1 }] }).policy // 'linux-7.0'
 */
export const NestedSchema = strictObject({
  policy: PolicySchema.default('linux-7.0'),
  get vms(): z.ZodDefault<z.ZodArray<typeof VmFields>> {
    return z.array(VmFields, { error: 'a list of VMs' }).default([]);
  },
});

/**
 * A virtual machine (L1, or L2 under `nested`). Cross-field rules (pins, names, scripts) are the
 * topology check's, which sees the whole scenario.
 *
 * @example
 * VmSchema.parse({ name: 'vm0', vcpus: 2 }).cpuid // { eraps: true, pcid: true, invpcid: true }
 */
export const VmSchema = VmFields;
export type Vm = z.output<typeof VmSchema>;
export type Nested = z.output<typeof NestedSchema>;
