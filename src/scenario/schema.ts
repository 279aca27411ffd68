import { z } from 'zod';
import { PositiveDurationSchema } from './duration.js';
import { ExpectSchema } from './expect.js';
import { HardwareSchema } from './hardware.js';
import { HostSchema } from './host.js';
import { LIMITS } from './limits.js';
import { intAtLeast, intIn } from './numbers.js';
import { strictObject } from './strictObject.js';
import { MatrixSchema, SeedsSchema } from './sweep.js';
import { VmSchema } from './vm.js';
import { HostProcessesSchema } from './workload.js';

/**
 * A whole scenario file (interface.md, "Scenario files"), strict at every level, with every
 * default applied: a consumer never sees an absent field except the genuinely optional ones
 * (`pin`, `nested`, `cpuid.rapSize`, `expect`, `matrix`, `seeds`, an INVPCID's `process`).
 * Times come out in picoseconds, probabilities as integer ratios, script ops normalized.
 *
 * Checks that need the whole scenario (pins against cores, scripts against vCPUs and processes,
 * VM names, syncpoints) are in topology.ts; `loadScenario` runs both.
 *
 * @example
 * ScenarioSchema.parse({ name: 'x' }).hardware.cores // 4
 */
export const ScenarioSchema = strictObject(
  {
    name: z.string({ error: 'a scenario name' }).min(1, { error: 'a non-empty scenario name' }),
    description: z.string({ error: 'a string' }).default(''),
    /** Root of every random stream of the run. */
    seed: intAtLeast(0, 'a seed: an integer ≥ 0').default(1),
    /** Simulated time to run for. */
    until: PositiveDurationSchema.prefault('2ms'),
    /** A hard cap on kernel events, so a runaway scenario stops instead of running for hours. */
    maxEvents: intAtLeast(1).default(50_000_000),
    /** Worker threads (partitions); results must not depend on it. */
    workers: intIn(1, LIMITS.workers).default(1),
    hardware: HardwareSchema.prefault({}),
    host: HostSchema.prefault({}),
    hostProcesses: HostProcessesSchema.prefault({}),
    /** Omitted: a bare-metal scenario. */
    vms: z.array(VmSchema, { error: 'a list of VMs' }).default([]),
    expect: ExpectSchema.optional(),
    matrix: MatrixSchema.optional(),
    seeds: SeedsSchema.optional(),
  },
  'a mapping of scenario keys (name, hardware, host, vms, ...)',
).meta({ title: 'rapsim scenario', description: 'A rapsim scenario file (docs/interface.md).' });

/** A scenario with every default resolved, as the rest of rapsim consumes it. */
export type Scenario = z.output<typeof ScenarioSchema>;
/** A scenario as written in a file (keys optional, times as strings). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;
